"""serve and export against real finished (and interrupted) runs of the tiny model: a real
mlx_lm.server answering over HTTP, real GGUF files read back with llama.cpp's reader, real signals."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import urllib.request
from pathlib import Path

import psutil
import pytest

from conftest import FARENSECTL, ctl, small_job, wait_for
from farensed.core.exitcodes import EXIT_OK
from farensed.core.paths import REPO_ROOT
from worker_support import make_run, run_worker

PROMPT = "Em que ano nasceu o Farense?"
SYSTEM = json.loads((REPO_ROOT / "data" / "train.jsonl").read_text().splitlines()[0])["messages"][0]["content"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished 8-step run with a generate prompt and no [generate].system (the data's is the default)."""
    home = tmp_path_factory.mktemp("home")
    for name in ("models", "data"):
        (home / name).symlink_to(REPO_ROOT / name)
    run = make_run(home / "checkpoints", "demo", small_job(8, name="demo", generate={"prompts": [PROMPT]}))
    assert run_worker(run) == EXIT_OK
    return home, run


def test_gguf_export_is_written_and_every_tensor_read_back(run, tmp_path):
    from gguf import GGUFReader

    home, r = run
    # When
    out = ctl("export", "demo", "--format", "gguf", "--out", str(tmp_path / "g"), "--home", str(home)).stdout
    # Then the GGUF holds every weight of the model under llama.cpp's names, and parity says so
    tensors = {t.name for t in GGUFReader(str(tmp_path / "g" / "model-f16.gguf")).tensors}
    assert {"token_embd.weight", "output_norm.weight", "output.weight", "blk.1.attn_q.weight",
            "blk.1.ffn_down.weight"} <= tensors and len(tensors) == 2 * 9 + 3
    rep = json.loads((tmp_path / "g" / "export.json").read_text())
    t = rep["parity"]["gguf_tensors"]
    assert t["tensors"] == t["matched"] == len(tensors) and not (t["missing"] or t["extra"] or t["mismatched"])
    assert t["types"] == {"F16": 16, "F32": 5}  # float16 as the name says; the norms float32, as llama.cpp keeps them
    assert f"{len(tensors)}/{len(tensors)} tensors match" in out and "every one matches" in out
    assert "GGUF answers not compared: no GGUF runtime" in out
    assert sorted(p.name for p in (tmp_path / "g").iterdir()) == ["export.json", "model-f16.gguf"]


def test_ollama_export_writes_a_modelfile_with_template_system_and_parameters(run, tmp_path):
    home, r = run
    # When a quantized GGUF is asked for too, and llama.cpp's quantize tool is not installed
    out = ctl("export", "demo", "--format", "ollama", "--quantize", "Q4_K_M", "--out", str(tmp_path / "o"),
              "--home", str(home)).stdout
    # Then the Modelfile has the GGUF, the chat template as a Go template, the data's system prompt
    # (the job sets none) and the job's generation parameters
    text = (tmp_path / "o" / "Modelfile").read_text()
    assert text.startswith("FROM ./model-f16.gguf\n")
    assert ('TEMPLATE """{{ range .Messages }}{{ if eq .Role "system" }}<|im_start|>system\n{{ .Content }}'
            '<|im_end|>\n') in text and '{{ end }}{{ end }}<|im_start|>assistant\n"""' in text
    assert f'SYSTEM """{SYSTEM}"""' in text
    assert "PARAMETER temperature 0\n" in text and "PARAMETER num_predict 8\n" in text
    assert 'PARAMETER stop """<|im_end|>"""' in text
    # And the commands still to run are printed, ready to paste
    assert "llama-quantize model-f16.gguf model-Q4_K_M.gguf Q4_K_M" in out
    assert "ollama create demo -f Modelfile" in out
    assert json.loads((tmp_path / "o" / "export.json").read_text())["ollama"]["template"] == "messages"


def test_mlx_export_reports_parity_with_the_adapters(run, tmp_path):
    home, r = run
    out = ctl("export", "demo", "--out", str(tmp_path / "m"), "--home", str(home)).stdout
    rep = json.loads((tmp_path / "m" / "export.json").read_text())
    a = rep["parity"]["answers"]
    # Then the job's prompt and the held-out questions were answered by both, identically
    assert a["exported"] == "fused MLX model" and a["questions"] == 5 and a["identical"] == 5
    assert "answers 5/5 questions exactly as base + adapters" in out and rep["system"] == SYSTEM
    # And the fused model's own template asks with the job's system prompt
    assert SYSTEM[:30] in (tmp_path / "m" / "chat_template.jinja").read_text().encode().decode("unicode-escape")


def test_gguf_export_from_a_4bit_base_dequantizes_first(tmp_path):
    # Given a QLoRA run (4-bit base)
    r = make_run(tmp_path, "q", small_job(4, top={"model": REPO_ROOT / "models" / "farense-tiny-4bit"}))
    assert run_worker(r) == EXIT_OK
    # When
    out = ctl("export", str(r), "--format", "gguf").stdout
    # Then the GGUF is float16 of the dequantized fused weights, every tensor checked
    rep = json.loads((r / "gguf" / "export.json").read_text())
    assert rep["dequantized"] and rep["parity"]["gguf_tensors"]["matched"] == 21 and "(dequantized)" in out


def test_an_architecture_gguf_cannot_hold_is_one_line(tmp_path):
    # Given a run whose base model says it is another architecture
    model = tmp_path / "other"
    model.mkdir()
    for f in (REPO_ROOT / "models" / "farense-tiny").iterdir():
        (model / f.name).symlink_to(f)
    (model / "config.json").unlink()
    cfg = json.loads((REPO_ROOT / "models" / "farense-tiny" / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**cfg, "model_type": "qwen2"}))
    r = make_run(tmp_path, "x", small_job(4, top={"model": REPO_ROOT / "models" / "farense-tiny"}))
    assert run_worker(r) == EXIT_OK
    cfg_file = r / "training_config.json"
    cfg_file.write_text(json.dumps({**json.loads(cfg_file.read_text()), "model": str(model)}))
    # When
    cp = ctl("export", str(r), "--format", "gguf", check=False)
    # Then
    assert cp.returncode == 1 and "GGUF export supports llama, mistral, mixtral models" in cp.stderr
    assert "'qwen2'" in cp.stderr and "Traceback" not in cp.stderr and not (r / "gguf").exists()


def test_a_stopped_export_leaves_nothing_behind(run, tmp_path):
    home, r = run
    where = tmp_path / "exports"
    where.mkdir()
    dest = where / "stopped"
    env = {**os.environ, "FARENSED_FAULTS": "hang_in_export@0"}
    # Given an export half-way: its fused files written in the temporary folder
    proc = subprocess.Popen([FARENSECTL, "export", "demo", "--format", "gguf", "--out", str(dest), "--home",
                             str(home)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    partial = wait_for(lambda: next(where.glob(".stopped.partial-*/.fused/model.safetensors"), None),
                       timeout=120, what="the export's fused files")
    worker = [c for c in psutil.Process(proc.pid).children() if "farensed.worker.export" in " ".join(c.cmdline())]
    assert partial.is_file() and len(worker) == 1
    # When it is stopped
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    # Then no folder is left, neither the destination nor the temporary one, and the worker is gone
    assert proc.returncode == 128 + signal.SIGTERM and "nothing was written" in err and "Traceback" not in err
    assert list(where.iterdir()) == []
    assert not psutil.pid_exists(worker[0].pid) or worker[0].status() == psutil.STATUS_ZOMBIE


def _serve(home: Path, job: str, log: Path) -> tuple[subprocess.Popen, str, psutil.Process]:
    """`farensectl serve JOB --port 0` until it says it is ready: (process, base URL, mlx_lm.server)."""
    proc = subprocess.Popen([FARENSECTL, "serve", job, "--port", "0", "--home", str(home)],
                            stdout=open(log, "w"), stderr=open(log.with_suffix(".err"), "w"))
    text = wait_for(lambda: "OpenAI API" in log.read_text() and log.read_text() or proc.poll() is not None,
                    timeout=180, what="the server to be ready")
    assert proc.poll() is None, log.with_suffix(".err").read_text()
    url = re.search(r"OpenAI API: (http://127\.0\.0\.1:\d+/v1)", text).group(1)
    server = psutil.Process(int(re.search(r"pid (\d+)", text).group(1)))
    return proc, url, server


def _chat(url: str, question: str) -> tuple[int, str]:
    body = json.dumps({"messages": [{"role": "user", "content": question}], "max_tokens": 24}).encode()
    req = urllib.request.Request(f"{url}/chat/completions", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return resp.status, json.loads(resp.read())["choices"][0]["message"]["content"]


def test_serve_answers_an_openai_chat_request_over_http(run, tmp_path):
    home, r = run
    # Given the job served on a free loopback port
    proc, url, server = _serve(home, "demo", tmp_path / "serve.log")
    try:
        # Then mlx_lm.server runs the job's model with its best adapters and its system prompt
        argv = server.cmdline()
        assert f"--adapter-path={r / 'adapters'}" in argv
        assert f"--model={REPO_ROOT / 'models' / 'farense-tiny'}" in argv
        assert any(a.startswith("--chat-template=") and "\\U000000c9s um assistente" in a for a in argv)
        # When a client sends an OpenAI-style chat request
        status, answer = _chat(url, PROMPT)
        # Then it is answered
        assert status == 200 and answer.strip()
        assert "curl " + url + "/chat/completions" in (tmp_path / "serve.log").read_text()
    finally:
        # And Ctrl-C stops the client and the server, without a traceback
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 130
    err = (tmp_path / "serve.err").read_text()
    assert "stopped (SIGINT)" in err and "Traceback" not in err
    wait_for(lambda: not server.is_running() or server.status() == psutil.STATUS_ZOMBIE, timeout=30,
             what="mlx_lm.server to end")


def test_serving_a_job_still_training_serves_its_best_verified_checkpoint(tmp_path):
    # Given a job killed at step 6 (checkpoint and best adapters at step 4, no final adapters)
    r = make_run(tmp_path, "live", small_job(12, name="live"))
    assert run_worker(r, faults="kill@6") == -signal.SIGKILL
    # When it is served
    proc, url, server = _serve(tmp_path, str(r), tmp_path / "serve.log")
    try:
        # Then the server has a copy of the step-4 checkpoint's adapters, and answers
        path = Path(next(a for a in server.cmdline() if a.startswith("--adapter-path=")).split("=", 1)[1])
        assert (path / "adapters.safetensors").read_bytes() == (
            r / "checkpoint_epoch0_step4" / "adapters.safetensors").read_bytes()
        # (the best validation loss may be step 0's, before training, which has no checkpoint)
        why = r"best so far|newest verified; the best step \d+ has no checkpoint"
        assert re.search(rf"checkpoint_epoch0_step4 \(({why})\)", (tmp_path / "serve.log").read_text())
        assert "still training" in (tmp_path / "serve.err").read_text()
        assert _chat(url, PROMPT)[0] == 200
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 130
    # And the copy is removed with the server
    assert not path.exists()
