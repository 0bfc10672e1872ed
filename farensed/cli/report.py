"""farensectl report JOB: loss, learning-rate and memory plots in <run>/plots/, and report.md."""

from __future__ import annotations

import click

from farensed.core.cli_common import clean_errors, get_home, home_option
from farensed.core.errors import FarensedError
from farensed.results.locate import locate
from farensed.results.rundata import load_run


@click.command()
@click.argument("job")
@home_option
@clean_errors
def report(job, home):
    """Plot a job's metrics and write its report page."""
    from farensed.results.answer_scores import run_scores
    from farensed.results.plots import render_all  # matplotlib only for this verb
    from farensed.results.report_page import write_report

    data = load_run(locate(get_home(home), job).run_dir)
    if not data.metrics:
        raise FarensedError(f"{data.run_dir}: no metrics yet (metrics.jsonl or training_metrics.json)")
    for path in render_all(data, run_scores(data)):
        click.echo(f"wrote {path}")
    click.echo(f"wrote {write_report(data)}")
