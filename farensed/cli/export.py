"""farensectl export JOB --format mlx|gguf|ollama: the job's adapters fused into a standalone model,
checked against the adapters' own answers (parity, in export.json)."""

from __future__ import annotations

import re
from pathlib import Path

import click

from farensed.core.cli_common import clean_errors, get_home, home_option
from farensed.core.errors import FarensedError
from farensed.core.exports import FORMATS
from farensed.results.adapter_choice import CHOICE_HELP, check_copy, pick
from farensed.results.adapters import adapter_folder
from farensed.results.export_client import export_to, make_plan
from farensed.results.locate import locate
from farensed.results.rundata import load_run
from farensed.serving.child import Stopped, stop_signals
from farensed.serving.export_text import parity_ok, summary

DEFAULT_FOLDER = {"mlx": "fused", "gguf": "gguf", "ollama": "ollama"}


def _quant_types(values: tuple[str, ...], fmt: str) -> list[str]:
    if values and fmt == "mlx":
        raise FarensedError("--quantize makes a quantized GGUF: use it with --format gguf or ollama")
    for v in values:
        if not re.fullmatch(r"[A-Z0-9_]{2,16}", v.upper()):
            raise FarensedError(f"--quantize {v!r}: expected a llama.cpp type such as Q4_K_M or Q8_0")
    return [v.upper() for v in values]


@click.command()
@click.argument("job")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="mlx", show_default=True,
              help="mlx: fused MLX folder; gguf: f16 GGUF (llama, mistral, mixtral); ollama: GGUF + Modelfile.")
@click.option("--quantize", multiple=True, metavar="TYPE", help="Also a quantized GGUF (e.g. Q4_K_M), made by"
              " llama.cpp's llama-quantize when installed, else the command is printed. Repeatable.")
@click.option("--adapters", "choice", default="best", show_default=True, help=CHOICE_HELP)
@click.option("--out", type=click.Path(file_okay=False), help="Where to write it (default <run>/fused|gguf|ollama).")
@click.option("--dequantize", is_flag=True, help="Full-precision weights from a 4-bit base (always for GGUF).")
@click.option("--force", is_flag=True, help="Replace a non-empty --out folder (only once the new one is complete).")
@home_option
@clean_errors
def export(job, fmt, quantize, choice, out, dequantize, force, home):
    """Export a job's model (MLX, GGUF or Ollama), then check it answers as the adapters do."""
    h = get_home(home)
    data = load_run(locate(h, job).run_dir)
    target = pick(data, h, choice)
    dest = Path(out).expanduser().resolve() if out else data.run_dir / DEFAULT_FOLDER[fmt]
    types = _quant_types(quantize, fmt)
    click.echo(f"[{data.name}: {target.words} on {target.model}]", err=True)
    try:
        with stop_signals(), adapter_folder(target, data.run_dir) as folder:
            check_copy(target, folder)
            rep = export_to(dest, lambda tmp: make_plan(data, h, target, folder, fmt, tmp, dequantize, types), force)
    except Stopped as e:
        click.echo(f"export stopped ({e}): nothing was written at {dest}", err=True)
        raise SystemExit(e.exit_code) from None
    for line in summary(rep, dest):
        click.echo(line)
    if not parity_ok(rep):
        click.echo(f"warning: the export does not answer exactly as the adapters do (details in {dest}/export.json)",
                   err=True)
