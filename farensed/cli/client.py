"""What every farensectl verb needs: the spool, job records, and whether the daemon is alive."""

from __future__ import annotations

from farensed import __version__
from farensed.core.errors import FarensedError, StateError
from farensed.core.paths import Home
from farensed.core.spool import records
from farensed.core.spool.folders import SpoolDirs
from farensed.core.spool.lock import holder_pid
from farensed.core.status import DaemonInfo, Status, build, daemon_state
from farensed.core.suggest import did_you_mean


def dirs(home: Home) -> SpoolDirs:
    return SpoolDirs(home.spool)


def job(home: Home, job_id: str) -> records.JobRecord:
    """The record of `job_id`, or a clear error naming the spool."""
    path = records.record_path(dirs(home).jobs, job_id)
    if not path.exists():
        raise FarensedError(f"{path}: no job {job_id!r} in {home.spool}{did_you_mean(job_id, job_ids(home))}")
    try:
        return records.load(dirs(home).jobs, job_id)
    except StateError as e:
        raise FarensedError(f"{e}; farensed writes it again (within seconds while it runs, else when it"
                            " starts): try again then") from None


def job_ids(home: Home) -> list[str]:
    """The ids of every job record (readable or not), for a mistyped id's suggestion."""
    jobs = dirs(home).jobs
    return [p.stem for p in jobs.glob("*.json") if not p.name.startswith(".")] if jobs.is_dir() else []


def current_status(home: Home) -> Status:
    """status.json when the daemon is alive; else the same view rebuilt read-only from the records."""
    st, state = daemon_state(home)
    if state == "up":
        return st
    pid = st.daemon.pid if st else holder_pid(home.lock_file)  # torn status.json: the lock still names it
    info = DaemonInfo(pid=pid, version=st.daemon.version if st else __version__,
                      started_at=st.daemon.started_at if st else None,
                      heartbeat=st.daemon.heartbeat if st else None, state=state)
    return build(records.load_all(dirs(home).jobs), info, None)

