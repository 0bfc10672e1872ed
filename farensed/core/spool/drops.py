"""Dropping a job file into the spool as farensectl submit and the dashboard do: the id the daemon will
give, and an exclusive create under that name (never a replace), so parallel submits are each a job."""

from __future__ import annotations

from farensed.core.atomic import atomic_create_bytes
from farensed.core.errors import FarensedError
from farensed.core.paths import Home
from farensed.core.spool.folders import SpoolDirs, dropped_files
from farensed.core.spool.records import id_base, taken_ids, unique_id
from farensed.core.states import STATES


def predicted_id(home: Home, name: str) -> str:
    """The id the daemon will give: the stem, made unique against jobs (recorded, or claimed into a state
    folder and not yet recorded), outputs and pending drops."""
    dirs = SpoolDirs(home.spool)
    known = {p.stem for p in dirs.jobs.glob("*.json")} | {p.stem for s in STATES for p in dirs.state(s).glob("*.toml")}
    return unique_id(id_base(name), taken_ids(known, home.checkpoints, dropped_files(home.spool)))


def drop(home: Home, name: str, data: bytes) -> str:
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
