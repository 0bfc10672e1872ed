"""farensectl submit FILE: validate, write atomically into the spool, print the job id (last line)."""

from __future__ import annotations

from pathlib import Path

import click

from farensed.cli import client
from farensed.core.atomic import atomic_create_bytes
from farensed.core.cli_common import clean_errors, get_home, home_option
from farensed.core.errors import FarensedError
from farensed.core.jobfile import read_job_text
from farensed.core.spool.folders import dropped_files
from farensed.core.spool.records import id_base, taken_ids, unique_id
from farensed.core.states import STATES


def predicted_id(home, name: str) -> str:
    """The id the daemon will give: the stem, made unique against jobs (recorded, or claimed into a state
    folder and not yet recorded), outputs and pending drops."""
    dirs = client.dirs(home)
    known = {p.stem for p in dirs.jobs.glob("*.json")} | {p.stem for s in STATES for p in dirs.state(s).glob("*.toml")}
    return unique_id(id_base(name), taken_ids(known, home.checkpoints, dropped_files(home.spool)))


def drop(home, name: str, data: bytes) -> str:
    """Create spool/<id>.toml exclusively and return the id: parallel submits of one file each get a
    job of their own (a name another submit took meanwhile is skipped, never overwritten)."""
    home.spool.mkdir(parents=True, exist_ok=True)
    for _ in range(1000):
        job_id = predicted_id(home, name)
        target = home.spool / f"{job_id}.toml"
        try:
            if atomic_create_bytes(target, data):
                return job_id
        except OSError as e:
            raise FarensedError(f"{target}: cannot write into the spool: {e.strerror}") from None
    raise FarensedError(f"{home.spool}: no free job id for {name} after 1000 tries")


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
