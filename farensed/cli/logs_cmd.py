"""farensectl logs JOB [-f] [--tail N] [--json]: the worker's log for a job (its run folder's worker.log),
one readable line per event (time, event, key=value), or the JSON lines as written."""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from pathlib import Path

import click

from farensed.cli import client
from farensed.core.cli_common import clean_errors, get_home, home_option
from farensed.core.errors import FarensedError
from farensed.core.formats import WORKER_LOG
from farensed.core.states import FINISHED

SAME_ON_EVERY_LINE = ("run_dir", "job", "event", "level", "timestamp")


@click.command()
@click.argument("job_id")
@click.option("-f", "--follow", is_flag=True, help="Keep printing as the worker writes, until the job ends.")
@click.option("-n", "--tail", type=click.IntRange(min=0), default=None, help="Only the last N lines (then follow).")
@click.option("--json", "as_json", is_flag=True, help="The JSON lines as the worker wrote them.")
@home_option
@clean_errors
def logs(job_id, follow, tail, as_json, home):
    """Print a job's worker log: time, event, key=value (--json: raw JSON lines)."""
    h = get_home(home)
    rec = client.job(h, job_id)
    if not rec.output_dir:
        raise FarensedError(f"job {job_id} is {rec.state}: it has no run folder ({rec.reason or 'never started'})")
    path = Path(rec.output_dir) / WORKER_LOG
    show = _raw if as_json else _readable
    pos = _dump(path, 0, show, tail)
    while follow and client.job(h, job_id).state not in FINISHED | {"paused"}:
        time.sleep(0.5)
        pos = _dump(path, pos, show)
    if follow:
        _dump(path, pos, show)


def _dump(path: Path, pos: int, show, tail: int | None = None) -> int:
    """Print the whole lines written after `pos` (the last `tail` of them); returns the new position."""
    try:
        with open(path, "rb") as f:
            f.seek(pos)
            data = f.read()
    except FileNotFoundError:
        return pos
    end = data.rfind(b"\n") + 1  # a line still being written waits for its end
    lines = data[:end].decode("utf-8", errors="replace").splitlines()
    for line in lines[-tail:] if tail else ([] if tail == 0 else lines):
        sys.stdout.write(show(line) + "\n")
    sys.stdout.flush()
    return pos + end


def _raw(line: str) -> str:
    return line


def _readable(line: str) -> str:
    """`17:42:08  memory_measured  seconds=0.216 points=2`: local time, the event (and level when it is
    not info), the other keys; a line that is not a JSON event (a traceback) as it is."""
    try:
        ev = json.loads(line)
    except ValueError:
        return line
    if not isinstance(ev, dict) or "event" not in ev:
        return line
    when = _local_time(ev.get("timestamp"))
    level = ev.get("level", "info")
    head = f"{when}  {ev['event']}" + (f" [{level}]" if level != "info" else "")
    rest = " ".join(f"{k}={_value(v)}" for k, v in ev.items() if k not in SAME_ON_EVERY_LINE)
    return f"{head}  {rest}".rstrip()


def _local_time(stamp) -> str:
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return str(stamp)


def _value(v) -> str:
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False) if (" " in v or not v) else v
    return json.dumps(v, ensure_ascii=False)
