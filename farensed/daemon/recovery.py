"""At start: load records, repair file placement, stop orphan workers, resume what was running."""

from __future__ import annotations

import time
from pathlib import Path

from ..errors import FarensedError
from ..validate import check_job, output_dir
from . import records
from .records import STATES, JobRecord
from .supervise import count_restart
from .supervisor import same_process, stop_orphan
from .transition import place_file


def recover(d) -> None:
    d.records = records.load_all(d.dirs.jobs, d.log)
    for rec in list(d.records.values()):
        try:
            place_file(d.dirs, rec)
        except FarensedError as e:
            d.log.error("job_file_missing", job_id=rec.id, error=str(e))
    adopt_unrecorded(d)
    for rec in [r for r in d.records.values() if r.state == "running"]:
        resume_running(d, rec)


def adopt_unrecorded(d) -> None:
    """A file claimed into queued/ just before a crash, before its record was written."""
    for path in sorted(d.dirs.state("queued").glob("*.toml")):
        if path.stem not in d.records:
            now = time.time()
            seq = max((r.seq for r in d.records.values()), default=0) + 1
            rep = check_job(path, d.home, check_paths=False, job_id=path.stem)
            if rep.spec is None:
                continue
            d.admit(JobRecord(id=path.stem, file_name=path.name, name=rep.spec.name, state="queued", since=now,
                              seq=seq, priority=rep.spec.priority, submitted_at=now,
                              output_dir=str(output_dir(rep.spec, path.stem, d.home)),
                              max_restarts=rep.spec.max_restarts, reason="recovered after a crash"))
    for state in STATES:
        for path in d.dirs.state(state).glob("*.toml"):
            if path.stem not in d.records:
                d.log.warning("job_file_without_record", file=str(path))


def resume_running(d, rec: JobRecord) -> None:
    """The daemon died (or stopped) with this job running: stop any orphan, then resume it."""
    orphan = same_process(rec.worker_pid, rec.worker_started)
    if orphan is not None:
        stop_orphan(orphan, d.cfg.stop_grace, d.log)
    if rec.stop_for in ("cancel", "pause"):
        d.move(rec, "cancelled" if rec.stop_for == "cancel" else "paused", f"{rec.stop_for} requested",
               stop_for=None, worker_pid=None, worker_started=None)
        return
    if rec.output_dir:
        count_restart(Path(rec.output_dir))
    d.save(rec, worker_pid=None, worker_started=None, stop_for=None, not_before=None,
           restarts=rec.restarts + 1, reason="resumed after a daemon restart")
    d.log.info("job_resumed_after_restart", job_id=rec.id, orphan=orphan is not None)
