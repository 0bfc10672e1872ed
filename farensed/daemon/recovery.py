"""At start: load records, repair file placement, stop orphan workers, resume what was running.

Each job is recovered on its own (guard.for_job): a job whose record is unreadable or missing,
or whose files cannot be placed, fails with the reason; every other job goes on as it was.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from farensed.core.checks import check_job, output_dir
from farensed.core.spool import records
from farensed.core.spool.folders import reject
from farensed.core.spool.records import JobRecord
from farensed.core.states import FINISHED, STATES
from farensed.daemon.guard import for_job
from farensed.daemon.intake import outputs_of
from farensed.daemon.reap import count_restart
from farensed.daemon.transition import place_file
from farensed.daemon.worker_process import same_process, stop_orphan

if TYPE_CHECKING:
    from farensed.daemon.loop import Daemon


def recover(d: Daemon) -> None:
    d.records, unreadable = records.scan(d.dirs.jobs)
    lost = {}
    for path, error in unreadable.items():
        d.log.error("job_record_unreadable", file=str(path), error=error)
        lost[path.stem] = f"{path}: its record was unreadable ({error})"
        try:
            aside = records.set_aside(path)
            lost[path.stem] += f"; kept as {aside.name}"
        except OSError as e:
            d.log.error("job_record_not_set_aside", file=str(path), error=str(e))
    for rec in list(d.records.values()):
        with for_job(d, rec.id, "recover", f"{d.dirs.jobs / (rec.id + '.json')}: recovering the job"):
            place_file(d.dirs, rec, missing_ok=rec.state in FINISHED)
    adopt_unrecorded(d, lost)
    for rec in [r for r in d.records.values() if r.state == "running" and r.kind == "job"]:
        with for_job(d, rec.id, "recover", f"{rec.output_dir}: resuming after a daemon restart"):
            resume_running(d, rec)


def adopt_unrecorded(d: Daemon, lost: dict[str, str]) -> None:
    """Job files without a readable record: one claimed into queued/ just before a crash is queued
    again; a job that was further along fails with the reason (retry resumes it from its run folder)."""
    for state in STATES:
        for path in sorted(d.dirs.state(state).glob("*.toml")):
            if path.stem in d.records:
                continue
            why = lost.get(path.stem, f"{d.dirs.jobs / (path.stem + '.json')}: its record was missing")
            with for_job(d, path.stem, "recover", f"{path}: recovering a job without a record"):
                adopt(d, path, state, why)


def adopt(d: Daemon, path: Path, state: str, why: str) -> None:
    """A job file without a record. One in queued/ passes every check a dropped file passes (a file put
    there by hand is not trusted) and is queued again, or rejected with the reasons."""
    now = time.time()
    seq = max((r.seq for r in d.records.values()), default=0) + 1
    rep = check_job(path, d.home, check_paths=True, allow_remote_code=d.cfg.allow_remote_code, job_id=path.stem,
                    measure_tokens=False, other_outputs=outputs_of(d))
    spec = rep.spec if rep.ok else None
    if state == "queued" and spec is not None:  # nothing ran yet: queue it again, nothing is lost
        new, reason = "queued", f"recovered: {why}"
    elif state == "queued":
        new, reason = "rejected", f"{why}; and the job file does not pass the checks: {rep.problems[0]}"
    elif state in FINISHED:
        new, reason = state, f"recovered: {why}"
    else:  # it ran: how far, and with which restarts, is unknown; a person decides
        new, reason = "failed", f"{why}; `farensectl retry {path.stem}` resumes it from its run folder"
    rec = JobRecord(id=path.stem, file_name=path.name, name=spec.name if spec else "", state=new, since=now,
                    seq=seq, priority=spec.priority if spec else 0, submitted_at=now,
                    output_dir=str(output_dir(spec, path.stem, d.home)) if spec and spec.sweep is None else None,
                    max_restarts=spec.max_restarts if spec else 0, reason=reason,
                    finished_at=now if new in FINISHED else None, kind=records.kind_of(spec))
    if new == "rejected":
        reject(path, d.dirs.job_file("rejected", rec.id), [str(p) for p in rep.problems])
    d.admit(rec, recovered=True)
    if new != state:
        place_file(d.dirs, rec)
    d.log.warning("job_recovered_without_record", job_id=rec.id, file=str(path), state=new, reason=reason)


def resume_running(d: Daemon, rec: JobRecord) -> None:
    """The daemon died (or stopped) with this job running: stop any orphan, then resume it."""
    orphan = same_process(rec.worker_pid, rec.worker_started)
    if orphan is not None:
        stop_orphan(orphan, d.cfg.stop_grace, d.log)
    if rec.stop_for == "prune":  # its sweep had stopped it: pruned, its checkpoints kept
        d.move(rec, "done", rec.reason or "pruned by its sweep", stop_for=None, worker_pid=None, worker_started=None,
               outcome="pruned")
        return
    if rec.stop_for in ("cancel", "pause"):
        d.move(rec, "cancelled" if rec.stop_for == "cancel" else "paused", f"{rec.stop_for} requested",
               stop_for=None, worker_pid=None, worker_started=None)
        return
    if rec.output_dir:
        count_restart(Path(rec.output_dir))
    d.save(rec, worker_pid=None, worker_started=None, stop_for=None, not_before=None,
           restarts=rec.restarts + 1, reason="resumed after a daemon restart")
    d.log.info("job_resumed_after_restart", job_id=rec.id, orphan=orphan is not None)
