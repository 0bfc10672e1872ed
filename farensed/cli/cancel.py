"""farensectl cancel JOB: Cancel a job: a queued one at once, a running one at its next checkpoint."""

from __future__ import annotations

import click

from farensed.cli.request import send
from farensed.core.cli_common import clean_errors, get_home, home_option


@click.command()
@click.argument("job_id")
@home_option
@clean_errors
def cancel(job_id, home):
    """Cancel a job: a queued one at once, a running one at its next checkpoint."""
    send(get_home(home), "cancel", job_id)
