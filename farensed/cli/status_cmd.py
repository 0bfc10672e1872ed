"""farensectl status [JOB] [--json]: one screen, pueue-like; says when the daemon is down or stale."""

from __future__ import annotations

import click

from farensed.cli.table import job_detail, jobs_table
from farensed.core import spool_peek, status_peek
from farensed.core.cli_common import clean_errors, get_home, home_option
from farensed.core.spool.lock import daemon_alive


@click.command()
@click.argument("job_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (documented, stable).")
@home_option
@clean_errors
def status(job_id, as_json, home):
    """Where the daemon and the jobs stand."""
    h = get_home(home)
    fast = None if job_id else status_peek.read_fresh(h.status_file, daemon_alive(h))
    if fast is not None:  # the daemon is up: its status.json as written, no models to build
        text, st = fast
        click.echo(text.rstrip("\n") if as_json else overview(st))
        return
    light = None if job_id or as_json else spool_peek.status(h)
    if light is not None:  # daemon down or stale: the spool read as plain JSON, still no models
        click.echo(overview(light))
        return
    from farensed.cli import client  # the full models: --json, one job asked for, or a file to explain

    st = client.current_status(h)
    if job_id:
        show_job(h, st, job_id, as_json)
    else:
        click.echo(st.model_dump_json(indent=2) if as_json else overview(st))


def overview(st) -> str:
    views = ([st.current] if st.current else []) + st.queue + st.paused + list(st.sweeps) + st.recent
    lines = [status_peek.daemon_note(st), jobs_table(views) if views else "no jobs"]
    if st.queued_total > len(st.queue):
        lines.append(f"... and {st.queued_total - len(st.queue)} more queued (farensectl list shows all)")
    return "\n".join(lines)


def show_job(h, st, job_id: str, as_json: bool) -> None:
    from farensed.cli import client
    from farensed.core.status import job_view
    from farensed.results.answers import results_text

    views = ([st.current] if st.current else []) + st.queue + st.paused + list(st.sweeps) + st.recent
    view = next((v for v in views if v.id == job_id), None) or job_view(client.job(h, job_id))
    if view.kind == "sweep":
        show_sweep(h, view, as_json)
        return
    if as_json:
        click.echo(view.model_dump_json(indent=2))
        return
    click.echo(job_detail(view))
    if view.output_dir and (line := _lineage(view.output_dir)):
        click.echo(line)
    eta = view.figure("eta_seconds") if view.state == "running" else None
    if view.output_dir and (shown := results_text(view.output_dir, h, eta)):
        click.echo(shown)


def show_sweep(h, view, as_json: bool) -> None:
    """A sweep: its trials ranked and the winner (sweep.json, written by the daemon)."""
    from farensed.results.sweep_text import load, sweep_text

    table = load(h, view.id)
    if as_json:
        click.echo(table.model_dump_json(indent=2))
        return
    click.echo(sweep_text(table, view.state))


def _lineage(run_dir: str) -> str | None:
    """A continued job names its parent; a sweep's trial, its sweep."""
    from pathlib import Path

    from farensed.core.errors import FarensedError
    from farensed.core.formats import JOB_FILE
    from farensed.core.jobfile import load_job

    try:
        spec = load_job(Path(run_dir) / JOB_FILE)
    except FarensedError:
        return None
    init = spec.init
    if init is None:
        return None
    source = f"job {init.job} ({init.adapters} adapters)" if init.job else f"the adapters in {init.path}"
    return f"lineage: continued from {source}; its steps count on from {init.steps_before}"
