"""farensectl resume JOB: Resume a paused job: it goes back to the queue and continues from its checkpoint."""

from __future__ import annotations

import click

from farensed.cli.request import send
from farensed.core.cli_common import clean_errors, get_home, home_option


@click.command()
@click.argument("job_id")
@home_option
@clean_errors
def resume(job_id, home):
    """Resume a paused job: it goes back to the queue and continues from its checkpoint."""
    send(get_home(home), "resume", job_id)
