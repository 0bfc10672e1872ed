"""farensectl status [JOB] [--json]: one screen, pueue-like; says when the daemon is down or stale."""

from __future__ import annotations

import click

from ..results.answers import results_text
from ..status import JobView, job_view
from . import client
from .common import clean_errors, get_home, home_option
from .table import job_detail, jobs_table


@click.command()
@click.argument("job_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (documented, stable).")
@home_option
@clean_errors
def status(job_id, as_json, home):
    """Where the daemon and the jobs stand."""
    h = get_home(home)
    st = client.current_status(h)
    if job_id:
        view = _find(st, job_id) or job_view(client.job(h, job_id))
        if as_json:
            click.echo(view.model_dump_json(indent=2))
            return
        click.echo(job_detail(view))
        if view.output_dir and (shown := results_text(view.output_dir)):
            click.echo(shown)
        return
    if as_json:
        click.echo(st.model_dump_json(indent=2))
        return
    click.echo(client.daemon_note(st))
    views = ([st.current] if st.current else []) + st.queue + st.paused + st.recent
    click.echo(jobs_table(views) if views else "no jobs")
    if st.queued_total > len(st.queue):
        click.echo(f"... and {st.queued_total - len(st.queue)} more queued (farensectl list shows all)")


def _find(st, job_id: str) -> JobView | None:
    for v in ([st.current] if st.current else []) + st.queue + st.paused + st.recent:
        if v.id == job_id:
            return v
    return None
