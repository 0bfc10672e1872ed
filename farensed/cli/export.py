"""farensectl export JOB: fuse the job's adapters into a standalone model folder (mlx-lm fuse)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

from farensed.core.cli_common import clean_errors, get_home, home_option
from farensed.core.errors import FarensedError
from farensed.core.exitcodes import EXIT_OOM_EXHAUSTED
from farensed.host.blas import worker_env
from farensed.results.adapters import adapter_folder, choose
from farensed.results.locate import locate
from farensed.results.rundata import load_run


@click.command()
@click.argument("job")
@click.option("--out", type=click.Path(file_okay=False), help="Where to write the model (default <run>/fused).")
@click.option("--dequantize", is_flag=True, help="Full-precision weights (from a 4-bit base model).")
@click.option("--final", is_flag=True, help="The final adapters instead of the best (by the job's [evaluate] select).")
@click.option("--checkpoint", metavar="NAME", help="A checkpoint's adapters (folder name or step).")
@click.option("--force", is_flag=True, help="Overwrite a non-empty --out folder.")
@home_option
@clean_errors
def export(job, out, dequantize, final, checkpoint, force, home):
    """Fuse a job's adapters into a model mlx_lm.load/generate use without farensed."""
    h = get_home(home)
    data = load_run(locate(h, job).run_dir)
    target = choose(data, h, final=final, checkpoint=checkpoint)
    dest = Path(out).expanduser().resolve() if out else data.run_dir / "fused"
    if dest.is_dir() and any(dest.iterdir()) and not force:
        raise FarensedError(f"{dest}: exists and is not empty (use --force to overwrite, or --out)")
    with adapter_folder(target, data.run_dir) as folder:
        cmd = [sys.executable, "-m", "farensed.worker.export", "--model", target.model, "--adapter-path",
               str(folder), "--save-path", str(dest)] + (["--dequantize"] if dequantize else []) + (
               ["--trust-remote-code"] if target.trust_remote_code else [])
        proc = subprocess.run(cmd, capture_output=True, text=True, env=worker_env())
    if proc.returncode != 0:
        why = "not enough memory" if proc.returncode == EXIT_OOM_EXHAUSTED else (
            proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        raise FarensedError(f"exporting {target.label} adapters of {data.run_dir} to {dest} failed: {why}")
    click.echo(f"fused {target.words} of {data.name} into {dest}"
               f"{' (de-quantized)' if dequantize else ''}\n  use: mlx_lm.generate --model {dest} --prompt ...")
