"""farensectl plan FILE: how many steps and evals a job has, and the time and peak memory it will
take on this machine, measured by a few real steps in a worker (nothing kept)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import click

from farensed.core.cli_common import clean_errors, get_home, home_option
from farensed.core.errors import FarensedError


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
@click.option("--steps", type=click.IntRange(min=1, max=50), default=3, show_default=True,
              help="Timed steps after the first (which compiles), plus the epoch's largest step.")
@home_option
@clean_errors
def plan(file, steps, home):
    """Estimate a job before submitting it: steps, evals, time (evals, answer probe and final
    scoring included) and peak memory, from a short measured run in a worker subprocess. The
    figures are kept for `status JOB`; the run's temporary folder is removed."""
    from farensed.core import plans
    from farensed.core.checks import check_job
    from farensed.core.formats import PlanEstimate
    from farensed.results.plan_text import plan_lines

    h = get_home(home)
    rep = check_job(file, h, measure_tokens=False)
    for p in rep.problems:
        click.echo(f"error: {p}", err=True)
    if not rep.ok:
        raise FarensedError(f"{file}: cannot plan it ({len(rep.problems)} problem(s); see farensectl validate)")
    for warning in rep.spec.evaluate.warnings:
        click.echo(f"warning: {warning}", err=True)
    _warn_if_busy(h)
    click.echo(f"measuring {file} on this machine ({steps} + 2 real steps, one eval, one answer probe)...", err=True)
    estimate = PlanEstimate.model_validate_json(_measure(Path(file), h.root, steps))
    saved = plans.save(h, Path(file).read_bytes(), estimate)
    click.echo(f"{file}: {rep.spec.name}")
    click.echo("\n".join(plan_lines(estimate, _questions(rep.spec, h))))
    click.echo(f"  kept in {saved} (status shows it beside the run's own figures)")


def _warn_if_busy(home) -> None:
    """A job training beside the measurement slows it: the figures would be too high."""
    from farensed.core.status import daemon_state

    st, state = daemon_state(home)
    if state == "up" and st is not None and st.current is not None:
        click.echo(f"warning: job {st.current.id} is running: measured beside it, the times will be too long",
                   err=True)


def _measure(file: Path, home: Path, steps: int) -> str:
    """The worker's PlanEstimate line; its throw-away run folder is removed whatever happens."""
    from farensed.host.blas import worker_env

    tmp = Path(tempfile.mkdtemp(prefix="farensed-plan-"))
    try:
        shutil.copyfile(file, tmp / "job.toml")
        cmd = [sys.executable, "-m", "farensed.worker.plan_probe", str(tmp), "--home", str(home), "--steps", str(steps)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=worker_env())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        last = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        raise FarensedError(f"{file}: measuring the job failed: {last}")
    return lines[-1]


def _questions(spec, home) -> int:
    from farensed.scoring.questions import held_out, scored_questions

    return len(scored_questions(spec, held_out(spec, home))) + len(spec.generate.prompts)
