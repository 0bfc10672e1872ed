"""JOB arguments: a job id (its record's output folder, else checkpoints/<id>) or a run folder path."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from farensed.core.errors import FarensedError
from farensed.core.formats import JOB_FILE
from farensed.core.paths import Home
from farensed.core.reading import read_or_none
from farensed.core.spool import records
from farensed.core.spool.folders import SpoolDirs
from farensed.core.suggest import did_you_mean


@dataclass(frozen=True)
class RunRef:
    """One run folder and, when the job came through the spool, its id and record."""

    run_dir: Path
    job_id: str
    record: records.JobRecord | None = None


def find_record(home: Home, job_id: str) -> records.JobRecord | None:
    """The spool record of `job_id`, or None when there is none (or it is unreadable)."""
    return read_or_none(records.record_path(SpoolDirs(home.spool).jobs, job_id), records.JobRecord)


def locate(home: Home, job: str) -> RunRef:
    """The run folder for `job`: a spool job id first, then a folder path holding job.toml."""
    rec = find_record(home, job) if "/" not in job else None
    if rec is not None and rec.output_dir:
        return RunRef(Path(rec.output_dir), rec.id, rec)
    if rec is None:
        path = Path(job).expanduser()
        if (path / JOB_FILE).is_file():
            return RunRef(path.resolve(), path.name, None)
    default = home.checkpoints / job
    if (default / JOB_FILE).is_file():
        return RunRef(default, job, rec)
    if rec is not None:
        raise FarensedError(f"job {job} is {rec.state}: it has no run folder yet ({rec.reason or 'not started'})")
    if "/" in job:
        raise FarensedError(f"{Path(job).expanduser()}: not a run folder (no {JOB_FILE})")
    ids = [p.stem for p in SpoolDirs(home.spool).jobs.glob("*.json")] if SpoolDirs(home.spool).jobs.is_dir() else []
    raise FarensedError(f"no job {job!r}: not in {home.spool / 'jobs'} and no {JOB_FILE} in {default}"
                        f"{did_you_mean(job, ids)}")


def default_job(home: Home) -> RunRef:
    """For `watch` without JOB: the running job, else the one that started last."""
    recs = [r for r in records.load_all(SpoolDirs(home.spool).jobs).values() if r.output_dir]
    running = [r for r in recs if r.state == "running"]
    pick = running or sorted((r for r in recs if r.started_at), key=lambda r: r.started_at)[-1:]
    if not pick:
        raise FarensedError(f"no running or started job in {home.spool / 'jobs'}: name a JOB")
    return RunRef(Path(pick[0].output_dir), pick[0].id, pick[0])
