"""farensectl retry JOB: Retry a failed or cancelled job from its last checkpoint."""

from __future__ import annotations

import click

from farensed.cli.request import send
from farensed.core.cli_common import clean_errors, get_home, home_option


@click.command()
@click.argument("job_id")
@home_option
@clean_errors
def retry(job_id, home):
    """Retry a failed or cancelled job from its last checkpoint."""
    send(get_home(home), "retry", job_id)
