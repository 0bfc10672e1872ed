"""Single instance: an flock on farensed.lock holding our pid; a dead holder's lock is simply taken.
The client asks the same lock whether the daemon is alive (no pydantic here: status starts fast).

The client's probe takes a shared lock for a moment. A daemon starting in that moment must not take
the probe for a running daemon: it tries again for up to PROBE_WAIT seconds (a probe holds the lock
for microseconds, a daemon for its life)."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from farensed.core.errors import FarensedError
from farensed.core.paths import Home

PROBE_WAIT = 2.0  # seconds a starting daemon keeps trying a lock that a client may only be probing


class AlreadyRunning(FarensedError):
    """Another farensed holds the lock for this home."""


class InstanceLock:
    def __init__(self, path: Path):
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise AlreadyRunning naming the holder's pid."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise FarensedError(f"{self.path}: cannot open lock file: {e.strerror}") from None
        # The kernel drops an flock when its holder dies, so a stale lock file never blocks us.
        if not _lock_within(fd, PROBE_WAIT):
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise AlreadyRunning(f"{self.path}: farensed is already running for this home (pid {holder})")
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _lock_within(fd: int, seconds: float) -> bool:
    """Take the exclusive lock, trying again every 10 ms for `seconds`; False if it stayed held."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)


def holder_pid(path: Path) -> int | None:
    """The pid of the live daemon holding the lock, or None if nobody holds it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 32).decode(errors="replace").strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def daemon_alive(home: Home) -> bool:
    """Whether a live farensed holds the lock of this home."""
    return holder_pid(home.lock_file) is not None
