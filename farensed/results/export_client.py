"""`farensectl export`'s work (no mlx): the plan for the export worker, the worker run into a
temporary folder beside the destination, and the rename once export.json says it is done."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from farensed.core.errors import FarensedError
from farensed.core.exitcodes import EXIT_OOM_EXHAUSTED
from farensed.core.exports import EXPORT_REPORT, GGUF_ARCHITECTURES, ExportPlan, ExportReport
from farensed.core.paths import Home
from farensed.core.reading import read_or_none
from farensed.host.blas import worker_env
from farensed.results.adapters import Target
from farensed.results.rundata import RunData
from farensed.serving import child, staging
from farensed.serving.chat_template import model_folder
from farensed.serving.modelfile import ollama_name
from farensed.serving.parity_questions import parity_questions
from farensed.serving.server_cmd import checked_adapters, checked_model
from farensed.serving.space import check_space, needed_bytes


def model_config(model: str) -> tuple[Path, dict]:
    folder = model_folder(model)
    try:
        return folder, json.loads((folder / "config.json").read_text("utf-8"))
    except (OSError, ValueError) as e:
        raise FarensedError(f"{folder / 'config.json'}: cannot read the model's config: {e}") from None


def make_plan(data: RunData, home: Home, target: Target, adapters: Path, fmt: str, out: Path,
              dequantize: bool, quantize: list[str]) -> ExportPlan:
    """Everything the worker needs, each path checked; refuses an architecture GGUF cannot hold."""
    folder, config = model_config(target.model)
    if fmt != "mlx" and config.get("model_type") not in GGUF_ARCHITECTURES:
        raise FarensedError(f"{folder}: GGUF export supports {', '.join(GGUF_ARCHITECTURES)} models;"
                            f" this one is {config.get('model_type')!r} (export it with --format mlx)")
    check_space(out.parent, needed_bytes(folder, config, fmt, dequantize, len(quantize)))
    g = data.spec.generate if data.spec else None
    return ExportPlan(format=fmt, model=checked_model(target.model), adapters=str(checked_adapters(adapters)),
                      out=str(out), job=data.name, adapters_label=target.label, dequantize=dequantize,
                      trust_remote_code=target.trust_remote_code, system=target.system,
                      questions=parity_questions(data.spec, home) if data.spec else [],
                      temperature=g.temperature if g else 0.0, num_predict=g.max_tokens if g else 100,
                      quantize=quantize, quantize_tool=shutil.which("llama-quantize") if quantize else None,
                      ollama_name=ollama_name(data.name))


def _failure(code: int, err: str, dest: Path) -> FarensedError:
    if code == EXIT_OOM_EXHAUSTED:
        return FarensedError(f"exporting to {dest} failed: not enough memory (another job training?)")
    last = (err.strip().splitlines() or [f"exit code {code}"])[-1]
    return FarensedError(f"exporting to {dest} failed: {last} (nothing written)")


def _run_worker(plan: ExportPlan, err) -> int:
    """The export worker with the plan on its stdin; its progress lines go to our stderr."""
    proc = None
    try:
        proc = child.start([sys.executable, "-m", "farensed.worker.export"], worker_env(),
                           stdin=subprocess.PIPE, stdout=sys.stderr, stderr=err)
        proc.stdin.write(plan.model_dump_json().encode())
        proc.stdin.close()
        return proc.wait()
    except BaseException:  # Stopped (the caller is inside child.stop_signals) or anything else
        child.ignore_stop_signals()  # the cleanup below must finish, whatever is pressed now
        if proc is not None:
            child.ended(proc)
        raise


def export_to(dest: Path, plan_for, force: bool) -> ExportReport:
    """Run the export into a temporary folder and rename it to `dest`; nothing is left on failure."""
    staging.clear_stale(dest)
    if dest.is_dir() and any(dest.iterdir()) and not force:
        raise FarensedError(f"{dest}: exists and is not empty (use --force to overwrite, or --out)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = staging.partial_dir(dest)
    try:
        plan = plan_for(tmp)
        tmp.mkdir()
        with tempfile.TemporaryFile() as err:
            code = _run_worker(plan, err)
            err.seek(0)
            if code != 0:
                raise _failure(code, err.read().decode("utf-8", errors="replace"), dest)
        rep = read_or_none(tmp / EXPORT_REPORT, ExportReport)
        if rep is None:
            raise FarensedError(f"exporting to {dest} failed: the worker wrote no {EXPORT_REPORT} (nothing written)")
        staging.publish(tmp, dest)
        return rep
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
