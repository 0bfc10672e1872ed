"""The per-job record (spool/jobs/<id>.json): its state with timestamps, output folder, restarts."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import Field

from farensed.core import reading
from farensed.core.atomic import atomic_write_json
from farensed.core.errors import StateError
from farensed.core.safe_read import read_small_model
from farensed.core.states import JobState, StopFor
from farensed.core.strict import Strict


class Transition(Strict):
    """One state change, kept in the record's history."""

    from_state: JobState | None
    to_state: JobState
    at: float
    reason: str | None = None


class JobRecord(Strict):
    """Everything the daemon knows about one job beyond its job file and run folder."""

    schema_version: Literal[1] = 1
    id: str
    file_name: str  # the name it was dropped under
    name: str = ""  # the job's own `name`
    state: JobState
    since: float  # when it entered `state`
    seq: int  # arrival order
    priority: int = 0
    submitted_at: float
    started_at: float | None = None
    finished_at: float | None = None
    output_dir: str | None = None
    max_restarts: int = 3
    restarts: int = 0  # every worker restart (crash, out of memory, stall, daemon restart)
    crash_restarts: int = 0  # counted against max_restarts; reset by retry
    gpu_faults: int = 0
    reason: str | None = None
    exit_code: int | None = None
    outcome: str | None = None
    stop_for: StopFor | None = None  # why the running worker was asked to stop
    not_before: float | None = None  # back-off: do not (re)start before this time
    worker_pid: int | None = None
    worker_started: float | None = None  # psutil create_time, to recognise the same process
    paused_by: Literal["user", "battery", "disk", "host"] | None = None  # who holds a paused job
    model_local: bool | None = None  # the model was a local folder when the job was queued (not a hub id)
    kind: Literal["job", "sweep"] = "job"  # a sweep runs no worker: the daemon makes its trials (daemon/sweeps.py)
    sweep: str | None = None  # a trial's sweep id
    history: list[Transition] = Field(default_factory=list)


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def id_base(file_name: str) -> str:
    """A job id from a file name: its stem with unsafe characters replaced."""
    stem = Path(file_name).stem
    return _UNSAFE.sub("-", stem).strip("-.") or "job"


def unique_id(base: str, taken) -> str:
    """`base`, else `base-2`, `base-3`, ... : the first not in `taken`, compared casefolded (on macOS's
    case-insensitive disk, checkpoints/Job and checkpoints/job are one folder)."""
    folded = {t.casefold() for t in taken}
    if base.casefold() not in folded:
        return base
    n = 2
    while f"{base}-{n}".casefold() in folded:
        n += 1
    return f"{base}-{n}"


def taken_ids(record_ids: Iterable[str], checkpoints: Path, dropped: Iterable[Path] = ()) -> set[str]:
    """Ids in use: every record, every name under the checkpoints root and, for the client's
    prediction of the id the daemon will give, the files still waiting in the drop folder."""
    used = set(record_ids) | {p.stem for p in dropped}
    if checkpoints.is_dir():
        used |= {p.name for p in checkpoints.iterdir()}
    return used


def kind_of(spec) -> str:
    """"sweep" for a job file with a [sweep] table (it runs no worker), else "job"."""
    return "sweep" if spec is not None and spec.sweep is not None else "job"


def record_path(jobs_dir: Path, job_id: str) -> Path:
    return jobs_dir / f"{job_id}.json"


def save(jobs_dir: Path, rec: JobRecord) -> None:
    atomic_write_json(record_path(jobs_dir, rec.id), rec)


def load(jobs_dir: Path, job_id: str) -> JobRecord:
    return read_small_model(record_path(jobs_dir, job_id), JobRecord)


def load_all(jobs_dir: Path, log=None) -> dict[str, JobRecord]:
    """Every readable record; an unreadable one is logged and skipped, never deleted."""
    found, unreadable = scan(jobs_dir)
    for p, error in unreadable.items():
        if log is not None:
            log.error("job_record_unreadable", file=str(p), error=error)
    return found


def scan(jobs_dir: Path) -> tuple[dict[str, JobRecord], dict[Path, str]]:
    """The readable records by id, and the unreadable record files with the reason."""
    out: dict[str, JobRecord] = {}
    bad: dict[Path, str] = {}
    if not jobs_dir.is_dir():
        return out, bad
    for p in sorted(jobs_dir.glob("*.json")):
        if p.name.startswith("."):
            continue
        try:
            rec = read_small_model(p, JobRecord)
        except StateError as e:
            bad[p] = str(e)
            continue
        if rec.id != p.stem:
            bad[p] = f"{p}: holds the record of job {rec.id!r}, not {p.stem!r}"
            continue
        out[rec.id] = rec
    return out, bad


def set_aside(path: Path) -> Path:
    """Rename an unreadable record out of the way, keeping its bytes for a person to look at."""
    return reading.set_aside(path)
