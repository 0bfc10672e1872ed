"""Dropping a job file into the spool as farensectl submit and the dashboard do: the id the daemon will
give, reserved exclusively, then an exclusive create under that name (never a replace), so parallel
submits are each a job and each prints its own job's id."""

from __future__ import annotations

import os

from farensed.core.atomic import atomic_create_bytes, fsync_dir
from farensed.core.errors import FarensedError
from farensed.core.paths import Home
from farensed.core.spool.folders import SpoolDirs, dropped_files
from farensed.core.spool.records import id_base, taken_ids, unique_id
from farensed.core.states import STATES

IDS = ".ids"  # spool/.ids/<id, casefolded>: an empty file per id a submit took, created exclusively


def reserved(home: Home) -> set[str]:
    try:
        return {p.name for p in (home.spool / IDS).iterdir()}
    except FileNotFoundError:
        return set()


def predicted_id(home: Home, name: str) -> str:
    """The id the daemon will give: the stem, made unique against pending drops, jobs claimed into a state
    folder, recorded jobs, outputs and ids other submits reserved. Listed in the order the daemon moves a
    file (drop folder, state folder, then its record), so a file moving meanwhile is seen at least once."""
    dirs = SpoolDirs(home.spool)
    known = {p.stem for p in dropped_files(home.spool)}
    known |= {p.stem for s in STATES for p in dirs.state(s).glob("*.toml")}
    known |= {p.stem for p in dirs.jobs.glob("*.json")}
    return unique_id(id_base(name), taken_ids(known | reserved(home), home.checkpoints))


def reserve(home: Home, job_id: str) -> bool:
    """Take `job_id` for one submit: False when another submit took it first (exclusive create)."""
    folder = home.spool / IDS
    folder.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(folder / job_id.casefold(), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return False
    fsync_dir(folder)
    return True


def drop(home: Home, name: str, data: bytes) -> str:
    """Create spool/<id>.toml exclusively and return the id: parallel submits of one file each get a
    job of their own, and an id no other submit printed (a taken id is skipped, never overwritten)."""
    home.spool.mkdir(parents=True, exist_ok=True)
    for _ in range(1000):
        job_id = predicted_id(home, name)
        target = home.spool / f"{job_id}.toml"
        try:
            if reserve(home, job_id) and atomic_create_bytes(target, data):
                return job_id
        except OSError as e:
            raise FarensedError(f"{target}: cannot write into the spool: {e.strerror}") from None
    raise FarensedError(f"{home.spool}: no free job id for {name} after 1000 tries")
