"""farensectl report JOB: loss, learning-rate and memory plots in <run>/plots/, and report.md."""

from __future__ import annotations

import click

from ..errors import FarensedError
from ..results.locate import locate
from ..results.rundata import load_run
from .common import clean_errors, get_home, home_option


@click.command()
@click.argument("job")
@home_option
@clean_errors
def report(job, home):
    """Plot a job's metrics and write its report page."""
    from ..results.answer_scores import run_scores
    from ..results.plots import render_all  # matplotlib only for this verb
    from ..results.report_page import write_report

    data = load_run(locate(get_home(home), job).run_dir)
    if not data.metrics:
        raise FarensedError(f"{data.run_dir}: no metrics yet (metrics.jsonl or training_metrics.json)")
    for path in render_all(data, run_scores(data)):
        click.echo(f"wrote {path}")
    click.echo(f"wrote {write_report(data)}")
