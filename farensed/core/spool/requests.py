"""Control requests as files under spool/requests: written by farensectl, applied by the daemon.

They stay on disk while the daemon is down and are applied, in order, when it starts.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Literal

from farensed.core.atomic import atomic_write_json, fsync_dir
from farensed.core.errors import StateError
from farensed.core.safe_read import read_small_model
from farensed.core.states import Verb
from farensed.core.strict import Strict


class Request(Strict):
    """spool/requests/<ns>-<verb>-<job>.json"""

    schema_version: Literal[1] = 1
    verb: Verb
    job: str
    at: float


def write_request(requests_dir: Path, verb: str, job_id: str) -> Path:
    """Drop one request file atomically (a temp dotfile renamed into place)."""
    req = Request(verb=verb, job=job_id, at=time.time())
    path = requests_dir / f"{time.time_ns()}-{os.getpid()}-{verb}-{job_id}.json"
    atomic_write_json(path, req)
    return path


def pending(requests_dir: Path) -> list[Path]:
    try:
        return sorted(p for p in requests_dir.iterdir()  # a folder named *.json could not be removed: skipped
                      if p.suffix == ".json" and not p.name.startswith(".") and not p.is_dir())
    except FileNotFoundError:
        return []


REQUEST_LIMIT = 64 << 10  # a request is ~100 bytes


def read(path: Path, log) -> Request | None:
    """One request, or None for a corrupt one (logged; `done` removes it). Only a regular file is
    opened, non-blocking: a FIFO or device named *.json is refused unread instead of freezing the daemon."""
    try:
        return read_small_model(path, Request, REQUEST_LIMIT)
    except StateError as e:
        log.error("request_unreadable", file=str(path), error=str(e))
        return None


def done(path: Path) -> None:
    """Remove a request once applied; a crash before this replays it, which the state rules make harmless."""
    path.unlink(missing_ok=True)
    fsync_dir(path.parent)
