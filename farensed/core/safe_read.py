"""Reading a file a job names, or a job file itself, without being frozen or exhausted by it: only a
regular file is read (a FIFO, a device or a folder is refused, even through a symlink), it is opened
non-blocking so a FIFO cannot stall the caller in open(), and the limit is checked on what is read,
not on what stat says (/proc files and devices report size 0)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from farensed.core.errors import FarensedError, StateError


class NotRegular(FarensedError):
    """The path is a FIFO, a device, a socket or a folder: never read."""


class TooLarge(FarensedError):
    """More bytes than the reader allows."""


def kind(mode: int) -> str:
    kinds = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))
    for test, name in kinds:
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: str | Path) -> int:
    """A read-only descriptor of `path`, which must be a regular file (NotRegular otherwise)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegular(f"{path}: is {kind(mode)}, not a regular file")
        os.set_blocking(fd, True)
        return fd
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: str | Path, limit: int) -> bytes:
    """The whole file, at most `limit` bytes (TooLarge past that, counted on what was read)."""
    fd = open_regular(path)
    try:
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    finally:
        os.close(fd)
    if total > limit:
        raise TooLarge(f"{path}: more than {limit} bytes; at most {limit} are read")
    return b"".join(chunks)


def open_lines(path: str | Path):
    """A binary file object over a regular file, for reading line by line (data files)."""
    return os.fdopen(open_regular(path), "rb")


def read_small_model(path: str | Path, model, limit: int = 1 << 20):
    """A pydantic model from a small state file of the spool (a request, a record), read only if it is a
    regular file: a FIFO there would otherwise freeze the daemon in open(). StateError names the file."""
    from pydantic import ValidationError

    from farensed.core.formats import first_error

    try:
        return model.model_validate_json(read_bytes(path, limit))
    except FileNotFoundError:
        raise StateError(f"{path}: not found") from None
    except OSError as e:
        raise StateError(f"{path}: cannot read it: {e.strerror}") from None
    except (NotRegular, TooLarge) as e:
        raise StateError(str(e)) from None
    except ValidationError as e:
        raise StateError(f"{path}: not a valid {model.__name__}: {first_error(e)}") from None
    except ValueError as e:
        raise StateError(f"{path}: not a valid {model.__name__}: {e}") from None
