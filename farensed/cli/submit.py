"""farensectl submit FILE: validate, write atomically into the spool, print the job id (last line)."""

from __future__ import annotations

from pathlib import Path

import click

from farensed.cli import client
from farensed.core.atomic import atomic_write_bytes
from farensed.core.cli_common import clean_errors, get_home, home_option
from farensed.core.errors import FarensedError
from farensed.core.spool.folders import dropped_files
from farensed.core.spool.records import id_base, taken_ids, unique_id


def predicted_id(home, name: str) -> str:
    """The id the daemon will give: the stem, made unique against jobs, outputs and pending drops."""
    records = (p.stem for p in client.dirs(home).jobs.glob("*.json"))
    return unique_id(id_base(name), taken_ids(records, home.checkpoints, dropped_files(home.spool)))


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
    target = h.spool / f"{job_id}.toml"
    try:
        atomic_write_bytes(target, Path(file).read_bytes())  # temp dotfile + rename: never seen half-written
    except OSError as e:
        raise FarensedError(f"{target}: cannot write into the spool: {e.strerror}") from None
    click.echo(f"submitted {file} as {target}")
    click.echo(job_id)
