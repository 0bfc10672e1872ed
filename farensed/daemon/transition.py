"""The one place a job changes state: checks the change is allowed, records it, moves the file."""

from __future__ import annotations

import time

from farensed.core.errors import FarensedError
from farensed.core.spool import records
from farensed.core.spool.folders import SpoolDirs, find_job_file, move
from farensed.core.spool.records import JobRecord
from farensed.core.states import FINISHED, can_move


class TransitionError(FarensedError):
    """A state change that the job's current state does not allow."""


def transition(dirs: SpoolDirs, rec: JobRecord, new: str, log, reason: str | None = None,
               now: float | None = None, **changes) -> JobRecord:
    """Move `rec` to state `new`: record first (the truth), then the job file into its folder."""
    new_rec = transitioned(rec, new, reason, now, **changes)
    persist(dirs, new_rec)
    log.info("job_transition", job_id=rec.id, old=rec.state, new=new, reason=reason)
    return new_rec


def transitioned(rec: JobRecord, new: str, reason: str | None = None, now: float | None = None,
                 **changes) -> JobRecord:
    """The record after the move to `new` (nothing written); TransitionError when it is not allowed."""
    if not can_move(rec.state, new):
        raise TransitionError(f"job {rec.id}: cannot go from {rec.state} to {new}")
    now = time.time() if now is None else now
    hist = records.Transition(from_state=rec.state, to_state=new, at=now, reason=reason)
    upd = {"state": new, "since": now, "reason": reason, "history": [*rec.history, hist], **changes}
    if new == "running" and rec.started_at is None:
        upd.setdefault("started_at", now)
    if new in FINISHED:
        upd.setdefault("finished_at", now)
    return rec.model_copy(update=upd)


def persist(dirs: SpoolDirs, rec: JobRecord) -> None:
    """Write the record, then put the job file where its state says (a failed job's file may be gone)."""
    records.save(dirs.jobs, rec)
    place_file(dirs, rec, missing_ok=rec.state == "failed")


def place_file(dirs: SpoolDirs, rec: JobRecord, missing_ok: bool = False) -> None:
    """Put the job file in the folder of the record's state (also repairs a crash between the two).
    A job failing because its file was taken away (missing_ok) is recorded all the same."""
    want = dirs.job_file(rec.state, rec.id)
    if want.exists():
        return
    have = find_job_file(dirs, rec.id)
    if have is None and missing_ok:
        return
    if have is None:
        raise FarensedError(f"{want}: the job file of {rec.id} was removed from the spool (it is in no state folder)")
    move(have, want)


def admit(dirs: SpoolDirs, rec: JobRecord, log, recovered: bool = False) -> JobRecord:
    """Record a job that was just claimed (its file already renamed into its state folder).
    `recovered`: a job file found in a state folder without a readable record, taken as it is."""
    rec = admitted(rec, recovered)
    records.save(dirs.jobs, rec)
    log.info("job_transition", job_id=rec.id, old=None, new=rec.state, reason=rec.reason)
    return rec


def admitted(rec: JobRecord, recovered: bool = False) -> JobRecord:
    """The first record of a job (its history started); TransitionError when it cannot start so."""
    if not recovered and not can_move(None, rec.state):
        raise TransitionError(f"job {rec.id}: a new job cannot start as {rec.state}")
    return rec.model_copy(update={"history": [records.Transition(from_state=None, to_state=rec.state,
                                                                   at=rec.since, reason=rec.reason)]})
