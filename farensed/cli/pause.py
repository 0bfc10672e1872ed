"""farensectl pause JOB: Pause a job: a running one checkpoints and holds until resume (also across restarts)."""

from __future__ import annotations

import click

from farensed.cli.request import send
from farensed.core.cli_common import clean_errors, get_home, home_option


@click.command()
@click.argument("job_id")
@home_option
@clean_errors
def pause(job_id, home):
    """Pause a job: a running one checkpoints and holds until resume (also across restarts)."""
    send(get_home(home), "pause", job_id)
