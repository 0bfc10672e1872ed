"""The daemon's job records are the truth; the record files and the job files' folders catch up.

A write that fails (a full disk, a read-only spool) leaves the record in memory and is tried again
every tick until it succeeds (sync_records), so `list`, `resume` and the state folders agree with
the daemon as soon as a write can succeed, without a restart. A record file changed behind the
daemon's back (torn, emptied, removed) is set aside with its bytes and written again.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from farensed.core.errors import StateError
from farensed.core.formats import read_model
from farensed.core.spool import records
from farensed.core.spool.folders import MoveError, SpoolDirs
from farensed.core.spool.records import JobRecord
from farensed.daemon.transition import persist

if TYPE_CHECKING:
    from farensed.daemon.loop import Daemon

WRITE_ERRORS = (OSError, MoveError)  # the disk or the folder refused: the same write can succeed later


class RecordFiles:
    """Writes records and job-file moves, remembering the ones that did not reach disk."""

    def __init__(self, dirs: SpoolDirs, log):
        self.dirs, self.log = dirs, log
        self.unsaved: set[str] = set()
        self.written: dict[str, tuple] = {}  # id -> the record file's signature after our last write

    def write(self, rec: JobRecord) -> bool:
        """Persist `rec`; False (and it is kept for the next try) when the disk refused."""
        try:
            persist(self.dirs, rec)
        except WRITE_ERRORS as e:
            if rec.id not in self.unsaved:
                self.log.error("job_record_not_saved", job_id=rec.id, state=rec.state, error=str(e))
            self.unsaved.add(rec.id)
            return False
        if rec.id in self.unsaved:
            self.unsaved.discard(rec.id)
            self.log.info("job_record_saved", job_id=rec.id, state=rec.state)
        # The signature first, then whether the file still holds what we wrote: a writer that came
        # between our rename and the stat (a user's editor, a torn copy) must not pass for ours.
        path = records.record_path(self.dirs.jobs, rec.id)
        sig = signature(path)
        self.written[rec.id] = sig if _reads_as(path, rec) else None
        return True

    def check(self, rec: JobRecord) -> None:
        """Write `rec` again if its file is not the one we wrote (changed, torn or gone)."""
        path = records.record_path(self.dirs.jobs, rec.id)
        sig = signature(path)
        if sig is not None and sig == self.written.get(rec.id):
            return
        if sig is not None and _reads_as(path, rec):
            self.written[rec.id] = sig
            return
        aside = None
        if sig is not None:
            try:
                aside = records.set_aside(path)
            except OSError:
                pass
        self.log.warning("job_record_rewritten", job_id=rec.id, file=str(path),
                         kept_as=aside.name if aside else None, why="missing" if sig is None else "changed")
        self.write(rec)


def sync_records(d: Daemon) -> None:
    """Every tick: retry what did not reach disk, then repair record files changed behind our back."""
    for job_id in sorted(d.files.unsaved):
        if job_id in d.records:
            d.files.write(d.records[job_id])
    for rec in list(d.records.values()):
        if rec.id not in d.files.unsaved:
            d.files.check(rec)


def signature(path) -> tuple | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _reads_as(path, rec: JobRecord) -> bool:
    try:
        return read_model(path, JobRecord) == rec
    except StateError:
        return False
