"""farensectl logs JOB [-f]: the worker's log for a job (its run folder's worker.log)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from farensed.cli import client
from farensed.core.cli_common import clean_errors, get_home, home_option
from farensed.core.errors import FarensedError
from farensed.core.formats import WORKER_LOG
from farensed.core.states import FINISHED


@click.command()
@click.argument("job_id")
@click.option("-f", "--follow", is_flag=True, help="Keep printing as the worker writes, until the job ends.")
@home_option
@clean_errors
def logs(job_id, follow, home):
    """Print a job's worker log."""
    h = get_home(home)
    rec = client.job(h, job_id)
    if not rec.output_dir:
        raise FarensedError(f"job {job_id} is {rec.state}: it has no run folder ({rec.reason or 'never started'})")
    path = Path(rec.output_dir) / WORKER_LOG
    pos = _dump(path, 0)
    while follow and client.job(h, job_id).state not in FINISHED | {"paused"}:
        time.sleep(0.5)
        pos = _dump(path, pos)
    if follow:
        _dump(path, pos)


def _dump(path: Path, pos: int) -> int:
    try:
        with open(path, "rb") as f:
            f.seek(pos)
            data = f.read()
    except FileNotFoundError:
        return pos
    sys.stdout.write(data.decode("utf-8", errors="replace"))
    sys.stdout.flush()
    return pos + len(data)
