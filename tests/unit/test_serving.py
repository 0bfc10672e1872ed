"""The pure parts of serving and exporting: the system prompt the data implies, the chat template
with that prompt first, the mlx_lm.server command line, the Ollama Modelfile, a GGUF's tensor check
(on a real GGUF file written with llama.cpp's gguf package), and the export's staging folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from transformers import AutoTokenizer

from conftest import REPO
from farensed.core.datasets import Example, Splits
from farensed.core.errors import FarensedError
from farensed.core.jobspec import JobSpec
from farensed.core.system_prompt import job_system, shared_system
from farensed.results.adapter_choice import parse_choice
from farensed.serving import modelfile, staging
from farensed.serving.chat_template import read_chat_template, with_default_system
from farensed.serving.gguf_check import check_gguf, gguf_name
from farensed.serving.server_cmd import ServeSpec, base_url, checked_host, curl_example, server_argv

TINY = REPO / "models" / "farense-tiny"
TRICKY = 'És "um" \\ {{ x }} {% y %} \'q\' 😀\nsegunda linha'


def chat(system: str | None, user: str = "Q") -> Example:
    msgs = ([{"role": "system", "content": system}] if system is not None else []) + [
        {"role": "user", "content": user}, {"role": "assistant", "content": "A"}]
    return Example("f.jsonl", 1, {"messages": msgs}, "chat")


def spec(**generate) -> JobSpec:
    return JobSpec(name="j", model="m", data="d", generate=generate)


def test_the_system_prompt_every_example_shares_is_the_default_and_generate_system_overrides_it():
    same = Splits([chat("S"), chat("S", "Q2")], [chat("S")])
    assert shared_system(same.train + same.valid) == "S" and job_system(spec(), same) == "S"
    assert job_system(spec(system="Other"), same) == "Other"
    assert job_system(spec(system=""), same) is None  # "" says: no system prompt
    assert shared_system([chat("S"), chat("T")]) is None and shared_system([chat("S"), chat(None)]) is None


@pytest.fixture(scope="module")
def tok():
    return AutoTokenizer.from_pretrained(str(TINY))


def test_the_wrapped_template_asks_a_bare_question_as_the_job_was_trained(tok):
    template = read_chat_template(TINY)
    wrapped = with_default_system(template, TRICKY)
    render = lambda t, m: tok.apply_chat_template(m, chat_template=t, tokenize=False, add_generation_prompt=True)  # noqa: E731
    user = [{"role": "user", "content": "Q"}]
    own = [{"role": "system", "content": "mine"}] + user
    # Then a question alone gets the system prompt, exactly as the original template renders it
    assert render(wrapped, user) == render(template, [{"role": "system", "content": TRICKY}] + user)
    # And a conversation with its own system message keeps it, alone
    assert render(wrapped, own) == render(template, own)
    assert with_default_system(template, None) == template


def test_the_server_command_line_passes_every_value_as_one_checked_argument(tmp_path):
    adapters = tmp_path / "adapters"
    adapters.mkdir()
    (adapters / "adapters.safetensors").write_bytes(b"x")
    (adapters / "adapter_config.json").write_text("{}")
    s = ServeSpec(model=str(TINY), adapters=adapters, host="127.0.0.1", port=8080, chat_template="{{ x }}",
                  temperature=0.0, max_tokens=40)
    argv = server_argv(s, python="py")
    assert argv[:4] == ["py", "-m", "mlx_lm", "server"]
    assert f"--model={TINY}" in argv and f"--adapter-path={adapters}" in argv and "--chat-template={{ x }}" in argv
    assert all(a.startswith("--") for a in argv[4:])  # nothing can pass for a positional value or another option
    for bad in ({"model": "--evil"}, {"model": "not a model"}, {"adapters": tmp_path}, {"chat_template": "a\x00b"}):
        with pytest.raises(FarensedError):
            server_argv(ServeSpec(**{**s.__dict__, **bad}))


def test_another_host_than_loopback_needs_an_explicit_flag():
    assert checked_host("127.0.0.1", False) == "127.0.0.1" and checked_host("::1", False) == "::1"
    with pytest.raises(FarensedError, match="--allow-remote"):
        checked_host("0.0.0.0", False)
    assert checked_host("0.0.0.0", True) == "0.0.0.0"
    with pytest.raises(FarensedError):
        checked_host("-h; rm -rf /", True)
    assert base_url("0.0.0.0", 9) == "http://127.0.0.1:9/v1" and base_url("::1", 9) == "http://[::1]:9/v1"
    shown = curl_example("http://h/v1", "l'été")
    assert shown.endswith("""'{"messages": [{"role": "user", "content": "l'"'"'été"}]}'""")


def test_the_modelfile_holds_the_template_the_system_prompt_and_the_parameters(tok):
    render = lambda m, g: tok.apply_chat_template(m, tokenize=False, add_generation_prompt=g)  # noqa: E731
    go, kind = modelfile.go_template(render)
    text = modelfile.render_modelfile("model-f16.gguf", go, "Sê breve.", 0.7, 64, modelfile.stops(render, "<|im_end|>"))
    assert kind == "messages"
    assert text == (
        'FROM ./model-f16.gguf\n'
        'TEMPLATE """{{ range .Messages }}{{ if eq .Role "system" }}<|im_start|>system\n{{ .Content }}<|im_end|>\n'
        '{{ else if eq .Role "user" }}<|im_start|>user\n{{ .Content }}<|im_end|>\n'
        '{{ else if eq .Role "assistant" }}<|im_start|>assistant\n{{ .Content }}<|im_end|>\n'
        '{{ end }}{{ end }}<|im_start|>assistant\n"""\n'
        'SYSTEM """Sê breve."""\nPARAMETER temperature 0.7\nPARAMETER num_predict 64\n'
        'PARAMETER stop """<|im_end|>"""\n')
    with pytest.raises(FarensedError, match='"""'):
        modelfile.render_modelfile("m.gguf", go, 'say """hi"""', 0, 1, [])
    assert modelfile.ollama_name("Farense Mistral 7B!") == "farense-mistral-7b"


MISTRAL = ("{%- if messages[0]['role'] == 'system' %}{%- set sys = messages[0]['content'] %}"
           "{%- set rest = messages[1:] %}{%- else %}{%- set rest = messages %}{%- endif %}"
           "{{- bos_token }}{%- for m in rest %}"
           "{%- if m['role'] == 'user' %}{%- if loop.first and sys is defined %}"
           "{{- '[INST] ' + sys + '\n\n' + m['content'] + ' [/INST]' }}"
           "{%- else %}{{- '[INST] ' + m['content'] + ' [/INST]' }}{%- endif %}"
           "{%- else %}{{- ' ' + m['content'] + '</s>' }}{%- endif %}{%- endfor %}")


def test_a_template_that_folds_the_system_prompt_into_the_first_turn_becomes_a_single_turn_one(tok):
    render = lambda m, g: tok.apply_chat_template(m, chat_template=MISTRAL, tokenize=False,  # noqa: E731
                                                  add_generation_prompt=g, bos_token="<s>")
    go, kind = modelfile.go_template(render, bos="<s>")
    assert kind == "single-turn"
    assert go == ("{{ if .System }}[INST] {{ .System }}\n\n{{ else }}[INST] {{ end }}{{ .Prompt }}"
                  "{{ if .System }} [/INST]{{ else }} [/INST]{{ end }}")


def _write_gguf(path, tensors: dict[str, np.ndarray]) -> None:
    from gguf import GGUFWriter

    w = GGUFWriter(str(path), "llama")
    for name, data in tensors.items():
        w.add_tensor(name, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def _permute(w: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's convert script's q/k row order (written out here, independently of the checker)."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def test_a_gguf_read_back_matches_its_weights_and_every_difference_is_named(tmp_path):
    rng = np.random.default_rng(0)
    fused = {"model.embed_tokens.weight": rng.standard_normal((10, 8), dtype=np.float32),
             "model.layers.0.self_attn.q_proj.weight": rng.standard_normal((8, 8), dtype=np.float32),
             "model.layers.0.self_attn.k_proj.weight": rng.standard_normal((4, 8), dtype=np.float32),
             "model.layers.0.input_layernorm.weight": rng.standard_normal(8, dtype=np.float32)}
    config = {"num_attention_heads": 2, "num_key_value_heads": 1}
    stored = {gguf_name(k): v.astype(np.float16) for k, v in fused.items() if "norm" not in k}
    stored["blk.0.attn_q.weight"] = _permute(fused["model.layers.0.self_attn.q_proj.weight"], 2).astype(np.float16)
    stored["blk.0.attn_k.weight"] = _permute(fused["model.layers.0.self_attn.k_proj.weight"], 1).astype(np.float16)
    stored["blk.0.attn_norm.weight"] = fused["model.layers.0.input_layernorm.weight"]
    _write_gguf(tmp_path / "ok.gguf", stored)
    good = check_gguf(tmp_path / "ok.gguf", fused, config)
    assert good.ok and good.matched == 4 and 0 < good.max_abs_error < 2e-3
    # When a value moves past float16 rounding, a tensor goes missing and another one is added
    stored["token_embd.weight"] = stored["token_embd.weight"].copy()
    stored["token_embd.weight"][3, 3] += np.float16(0.01)
    stored["stray.weight"] = stored.pop("blk.0.attn_norm.weight")
    _write_gguf(tmp_path / "bad.gguf", stored)
    bad = check_gguf(tmp_path / "bad.gguf", fused, config)
    # Then each is named
    assert not bad.ok and [m.name for m in bad.mismatched] == ["token_embd.weight"]
    assert bad.missing == ["model.layers.0.input_layernorm.weight (as blk.0.attn_norm.weight)"]
    assert bad.extra == ["stray.weight"]


def test_adapter_choices():
    assert parse_choice("best") == ("best", None) and parse_choice("final") == ("final", None)
    assert parse_choice("step:200") == parse_choice("200") == ("checkpoint", "200")
    assert parse_choice("checkpoint_epoch0_step8") == ("checkpoint", "checkpoint_epoch0_step8")
    with pytest.raises(FarensedError, match="step:N"):
        parse_choice("latest")


def test_publishing_replaces_the_destination_only_when_the_new_folder_is_whole(tmp_path):
    tmp_path = tmp_path / "exports"
    tmp_path.mkdir()
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "old").write_text("old")
    tmp = staging.partial_dir(dest)
    tmp.mkdir()
    (tmp / "new").write_text("new")
    staging.publish(tmp, dest)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and [p.name for p in dest.iterdir()] == ["new"]


def test_a_partial_folder_of_a_killed_export_is_cleared_and_a_live_ones_kept(tmp_path):
    tmp_path = tmp_path / "exports"
    tmp_path.mkdir()
    dest = tmp_path / "out"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / f".out.partial-{int(dead.stdout)}").mkdir()
    (tmp_path / f".out.partial-{os.getpid()}").mkdir()
    assert [p.name for p in staging.clear_stale(dest)] == [f".out.partial-{int(dead.stdout)}"]
    assert [p.name for p in tmp_path.iterdir()] == [f".out.partial-{os.getpid()}"]


def test_export_json_round_trips():
    from farensed.core.exports import ExportReport, Parity

    rep = ExportReport(format="gguf", job="j", adapters="best", adapter_path="a", model="m", dequantized=True,
                       system=None, files=["export.json"], parity=Parity(), seconds=1.0, created_at=0.0)
    assert ExportReport.model_validate_json(rep.model_dump_json()) == rep
    with pytest.raises(ValueError):
        ExportReport.model_validate({**json.loads(rep.model_dump_json()), "surprise": 1})


def test_validate_reports_the_system_prompt_it_will_use(tmp_path):
    from farensed.core.checks import check_job
    from farensed.core.paths import Home

    # Given the demo's data (one system prompt on every example) and a job that sets none, then one that does
    plain = tmp_path / "plain.toml"
    plain.write_text(f'schema_version = 1\nname = "p"\nmodel = "{TINY}"\ndata = "{REPO / "data"}"\n')
    given = tmp_path / "given.toml"
    given.write_text(plain.read_text() + '[generate]\nsystem = "Responde em inglês."\n')
    # Then validate names the data's prompt as the default, and the job's as overriding it
    notes = check_job(plain, Home(tmp_path)).notes
    assert any(n.startswith("system prompt: every chat example starts with the same one") and "És um" in n
               for n in notes)
    notes = check_job(given, Home(tmp_path)).notes
    assert "system prompt: [generate].system, not the data's shared one: Responde em inglês." in notes
