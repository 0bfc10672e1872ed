"""`python -m farensed.worker.export < plan.json`: fuse a job's adapters into its base model and
write the export the plan asks for (core/exports.py), then check it (parity) and write export.json.

mlx: the fused folder (what `mlx_lm fuse` writes); its chat template puts the job's system prompt
first when a conversation has none. gguf: mlx-lm's own GGUF export of the fused weights (a
quantized base is dequantized first: GGUF export takes float weights only), read back tensor by
tensor, plus llama.cpp's llama-quantize when it was found. ollama: the GGUF and a Modelfile.
Started by `farensectl export`, which owns the temporary folder `plan.out` and renames it."""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from farensed.core.atomic import atomic_write_json, atomic_write_text
from farensed.core.errors import FarensedError
from farensed.core.exports import (
    EXPORT_REPORT,
    GGUF_ARCHITECTURES,
    GGUF_F16,
    MODELFILE,
    ExportPlan,
    ExportReport,
    OllamaInfo,
    Parity,
    QuantizedFile,
)
from farensed.serving import modelfile
from farensed.serving.chat_template import with_default_system
from farensed.serving.gguf_check import gguf_facts, tokenizer_note
from farensed.worker import faults
from farensed.worker import parity as par
from farensed.worker.entry import run_mlx_command

FUSED_WORK = ".fused"  # the fused MLX model inside a GGUF export's folder while the GGUF is written


def say(text: str) -> None:
    print(text, flush=True)


def stall_if_asked() -> None:
    """The hang_in_export fault (worker/faults.py): a test stops the export here, half-way."""
    if "hang_in_export" in os.environ.get(faults.ENV, ""):
        say("hang_in_export: waiting to be stopped")
        while True:
            time.sleep(1)


def load_with_system(plan: ExportPlan):
    """base + adapters; the tokenizer's template puts the job's system prompt first (the fused
    model's saved template then does too). Returns (model, tokenizer, config, original template)."""
    from mlx_lm.utils import load

    model, tokenizer, config = load(plan.model, adapter_path=plan.adapters, return_config=True,
                                    trust_remote_code=plan.trust_remote_code)
    original = tokenizer.chat_template
    if plan.system and original:
        tokenizer._tokenizer.chat_template = with_default_system(original, plan.system)
    return model, tokenizer, config, original


def fuse(model, config: dict, dequantize: bool):
    """LoRA/DoRA layers folded into their base layers, as `mlx_lm fuse` does."""
    from mlx.utils import tree_unflatten
    from mlx_lm.utils import dequantize_model

    fused = [(n, m.fuse(dequantize=dequantize)) for n, m in model.named_modules() if hasattr(m, "fuse")]
    if fused:
        model.update_modules(tree_unflatten(fused))
    if dequantize:
        model = dequantize_model(model)
        config.pop("quantization", None)
        config.pop("quantization_config", None)
    return model


def as_f16(weights: dict) -> dict:
    """float16 weights, as the file says (mlx-lm's export converts bfloat16 only and would keep a
    float32 model float32); the norms stay float32, as llama.cpp keeps them."""
    import mlx.core as mx

    return {k: v.astype(mx.float16) if v.dtype in (mx.float32, mx.bfloat16) and "norm" not in k else v
            for k, v in weights.items()}


def write_gguf(work: Path, out: Path, model, config: dict, parity: Parity) -> Path:
    from mlx.utils import tree_flatten
    from mlx_lm.gguf import convert_to_gguf

    if config.get("model_type") not in GGUF_ARCHITECTURES:
        raise FarensedError(f"GGUF export supports {', '.join(GGUF_ARCHITECTURES)} models, not"
                            f" {config.get('model_type')!r}")
    weights = dict(tree_flatten(model.parameters()))
    gguf = out / GGUF_F16
    say(f"writing {gguf.name} (mlx-lm's GGUF export)")
    convert_to_gguf(work, as_f16(weights), config, str(gguf))
    say(f"reading {gguf.name} back: every tensor against the fused weights")
    parity.gguf_tensors = par.tensor_parity(gguf, weights, config)
    if note := tokenizer_note(work, gguf_facts(gguf)):
        parity.notes.append(note)
    return gguf


def fused_answers(work: Path, plan: ExportPlan, ours: list[str], parity: Parity):
    import mlx.core as mx
    from mlx_lm.utils import load

    gc.collect()
    mx.clear_cache()
    say(f"answering {len(plan.questions)} questions with the fused model")
    model, tokenizer = load(str(work))
    parity.answers = par.compare("fused MLX model", plan.questions, ours,
                                 par.greedy_answers(model, tokenizer, plan.questions, plan.max_tokens), plan.max_tokens)
    return tokenizer


def gguf_runtime_answers(gguf: Path, tokenizer, plan: ExportPlan, ours: list[str], parity: Parity) -> None:
    runtime = par.gguf_runtime()
    if runtime is None:
        parity.notes.append("GGUF answers not compared: no GGUF runtime here (pip install llama-cpp-python, then"
                            " export again); the GGUF's tensors were checked instead")
        return
    say(f"answering {len(plan.questions)} questions with {gguf.name} ({runtime})")
    parity.gguf_answers = par.compare(f"{gguf.name} ({runtime})", plan.questions, ours,
                                      par.gguf_answers(gguf, tokenizer, plan.questions, plan.max_tokens),
                                      plan.max_tokens)


def quantize(plan: ExportPlan, out: Path) -> list[QuantizedFile]:
    """llama.cpp's llama-quantize on the f16 GGUF for each type asked (run in the export folder,
    so the command line recorded works there too)."""
    done = []
    for qtype in plan.quantize:
        name = f"model-{qtype}.gguf"
        cmd = ["llama-quantize", GGUF_F16, name, qtype]
        written = False
        if plan.quantize_tool:
            say(f"quantizing to {qtype} ({plan.quantize_tool})")
            proc = subprocess.run([plan.quantize_tool, *cmd[1:]], cwd=out, capture_output=True, text=True)
            if proc.returncode != 0:
                last = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
                raise FarensedError(f"llama-quantize {qtype} failed: {last}")
            written = True
        done.append(QuantizedFile(type=qtype, file=name, written=written, command=cmd))
    return done


def write_modelfile(plan: ExportPlan, out: Path, tokenizer, template: str | None,
                    quantized: list[QuantizedFile]) -> OllamaInfo:
    if not template:
        raise FarensedError(f"{plan.model}: the model has no chat template, so Ollama could not be told how to ask")
    render = lambda msgs, gen: tokenizer.apply_chat_template(  # noqa: E731 - the original, not the system one
        msgs, add_generation_prompt=gen, tokenize=False, chat_template=template)
    go, kind = modelfile.go_template(render, tokenizer.bos_token or "")
    source = next((q.file for q in quantized if q.written), GGUF_F16)
    text = modelfile.render_modelfile(source, go, plan.system, plan.temperature, plan.num_predict,
                                      modelfile.stops(render, tokenizer.eos_token))
    atomic_write_text(out / MODELFILE, text)
    return OllamaInfo(modelfile=MODELFILE, template=kind, create_command=["ollama", "create", plan.ollama_name,
                                                                          "-f", MODELFILE])


def export(plan: ExportPlan) -> ExportReport:
    t0, out = time.monotonic(), Path(plan.out)
    model, tokenizer, config, template = load_with_system(plan)
    dequantize = plan.dequantize or (plan.format != "mlx" and "quantization" in config)
    say(f"answering {len(plan.questions)} questions with base + {plan.adapters_label} adapters")
    ours = par.greedy_answers(model, tokenizer, plan.questions, plan.max_tokens)
    say("fusing the adapters into the base model" + (" (dequantized)" if dequantize else ""))
    model = fuse(model, config, dequantize)
    work = out if plan.format == "mlx" else out / FUSED_WORK
    from mlx_lm.utils import save

    save(work, plan.model, model, tokenizer, config, donate_model=False)
    stall_if_asked()
    parity, gguf = Parity(), None
    if plan.format != "mlx":
        gguf = write_gguf(work, out, model, config, parity)
    del model
    fused_tok = fused_answers(work, plan, ours, parity)
    quantized, ollama = [], None
    if gguf is not None:
        gguf_runtime_answers(gguf, fused_tok, plan, ours, parity)
        quantized = quantize(plan, out)
        if plan.format == "ollama":
            ollama = write_modelfile(plan, out, tokenizer, template, quantized)
        shutil.rmtree(work)
    requantized = "quantization" in config
    return report(plan, out, parity, quantized, ollama, dequantize, requantized, time.monotonic() - t0)


def report(plan: ExportPlan, out: Path, parity: Parity, quantized, ollama, dequantized: bool, requantized: bool,
           seconds: float) -> ExportReport:
    notes = []
    if plan.system and plan.format == "mlx":
        notes.append("the chat template puts the job's system prompt first when a conversation has none")
    if plan.format == "mlx" and requantized:
        notes.append("the base model is quantized, so the fused weights were quantized again and answers can"
                     " move; --dequantize keeps the fused weights exact (and larger)")
    rep = ExportReport(format=plan.format, job=plan.job, adapters=plan.adapters_label, adapter_path=plan.adapters,
                       model=plan.model, dequantized=dequantized, system=plan.system,
                       files=sorted([p.name for p in out.iterdir()] + [EXPORT_REPORT]), parity=parity,
                       quantized=quantized, ollama=ollama, notes=notes, seconds=round(seconds, 2),
                       created_at=time.time())
    atomic_write_json(out / EXPORT_REPORT, rep)
    return rep


def run(plan: ExportPlan) -> None:
    try:
        export(plan)
    except (FarensedError, OSError, ValueError, NotImplementedError) as e:
        print(f"export failed: {e}", file=sys.stderr)
        raise SystemExit(1) from None


def main(argv=None) -> int:
    plan = ExportPlan.model_validate_json(sys.stdin.read())
    return run_mlx_command(run, plan, "export")


if __name__ == "__main__":
    sys.exit(main())
