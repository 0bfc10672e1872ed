"""farensectl submit FILE: validate, write atomically into the spool, print the job id (last line)."""

from __future__ import annotations

from pathlib import Path

import click

from farensed.core.cli_common import clean_errors, get_home, home_option
from farensed.core.errors import FarensedError
from farensed.core.jobfile import read_job_text
from farensed.core.spool.drops import drop, predicted_id


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
@home_option
@clean_errors
def submit(file, home):
    """Queue a job file (it is checked first, exactly as `validate` does)."""
    from farensed.core.checks import check_job  # the validator is heavy; other verbs start faster without it

    h = get_home(home)
    job_id = predicted_id(h, Path(file).name)
    rep = check_job(file, h, job_id=job_id, measure_tokens=False)
    for p in rep.problems:
        click.echo(f"error: {p}", err=True)
    for note in rep.notes:
        if note.startswith("warning:"):  # a retired key, mapped: the job runs, the user should know
            click.echo(note, err=True)
    if not rep.ok:
        raise FarensedError(f"{file}: not submitted ({len(rep.problems)} problem(s))")
    job_id = drop(h, Path(file).name, read_job_text(Path(file)).encode("utf-8"))
    click.echo(f"submitted {file} as {h.spool / (job_id + '.toml')}")
    click.echo(job_id)
