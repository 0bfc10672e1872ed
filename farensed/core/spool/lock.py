"""Single instance: an flock on farensed.lock holding our pid; a dead holder's lock is simply taken.
The client asks the same lock whether the daemon is alive (no pydantic here: status starts fast)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from farensed.core.errors import FarensedError
from farensed.core.paths import Home


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
        try:
            # The kernel drops an flock when its holder dies, so a stale lock file never blocks us.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise AlreadyRunning(f"{self.path}: farensed is already running for this home (pid {holder})") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


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
