"""What `farensectl export` prints from export.json (pure): the files, parity, and the commands
still to run (llama-quantize, ollama create)."""

from __future__ import annotations

import shlex
from pathlib import Path
from textwrap import shorten

from farensed.core.exports import AnswerParity, ExportReport, TensorParity


def answer_lines(p: AnswerParity) -> list[str]:
    head = (f"parity: {p.exported} answers {p.identical}/{p.questions} questions exactly as base + adapters"
            f" (greedy, up to {p.max_tokens} tokens)")
    lines = [head + ("" if p.differing else ": identical")]
    for d in p.differing:
        lines += [f"  differs at character {d.first_difference} on {d.source}: {shorten(d.question, 60)}",
                  f"    adapters: {shorten(d.adapters, 100)!r}", f"    exported: {shorten(d.exported, 100)!r}"]
    return lines


def tensor_lines(t: TensorParity) -> list[str]:
    verdict = "every one matches" if t.ok else "MISMATCH"
    lines = [f"parity: {t.file} read back: {t.matched}/{t.tensors} tensors match the fused weights (llama.cpp"
             f" names, shapes, values within float16 rounding; largest difference {t.max_abs_error:.3g}):"
             f" {verdict}; stored as {', '.join(f'{k} x{v}' for k, v in sorted(t.types.items()))}"]
    lines += [f"  missing in the GGUF: {n}" for n in t.missing] + [f"  not a fused weight: {n}" for n in t.extra]
    return lines + [f"  {m.name}: {m.why}" for m in t.mismatched]


def command_lines(rep: ExportReport, dest: Path) -> list[str]:
    lines = []
    for q in rep.quantized:
        if not q.written:
            lines.append(f"llama.cpp's llama-quantize was not found: to make {q.file}, install llama.cpp and run"
                         f"\n  cd {shlex.quote(str(dest))} && {shlex.join(q.command)}")
    waiting = [q.file for q in rep.quantized if not q.written]
    if rep.ollama is not None and waiting:
        lines.append(f"the Modelfile loads the f16 GGUF: once {waiting[0]} is made, change its FROM line"
                     f" to ./{waiting[0]}")
    if rep.ollama is not None:
        lines.append(f"to load it in Ollama:\n  cd {shlex.quote(str(dest))} && {shlex.join(rep.ollama.create_command)}")
    return lines


def summary(rep: ExportReport, dest: Path) -> list[str]:
    what = {"mlx": "a fused MLX model", "gguf": "a GGUF model", "ollama": "a GGUF model and an Ollama Modelfile"}
    lines = [f"exported {rep.job}'s {rep.adapters} adapters as {what[rep.format]}"
             f"{' (dequantized)' if rep.dequantized else ''} in {dest} ({rep.seconds:.0f} s): {', '.join(rep.files)}"]
    p = rep.parity
    lines += answer_lines(p.answers) if p.answers else []
    lines += tensor_lines(p.gguf_tensors) if p.gguf_tensors else []
    lines += answer_lines(p.gguf_answers) if p.gguf_answers else []
    lines += [f"note: {n}" for n in p.notes + rep.notes]
    if rep.format == "mlx":
        lines.append(f"use: mlx_lm.generate --model {shlex.quote(str(dest))} --prompt ...")
    return lines + command_lines(rep, dest)


def parity_ok(rep: ExportReport) -> bool:
    p = rep.parity
    return all(a is None or not a.differing for a in (p.answers, p.gguf_answers)) and (
        p.gguf_tensors is None or p.gguf_tensors.ok)
