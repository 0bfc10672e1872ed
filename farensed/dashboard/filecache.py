"""Files read once per change: a page polls every 2 s, and most files have not moved since.

A file's parse is kept under its (mtime_ns, size, inode); every writer of state replaces files by
rename (core/atomic.py) or appends, so a changed file always changes that key. Reads are tolerant:
a missing or unreadable file is None, never an error for the page.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Callable
from pathlib import Path

LOG_TAIL_BYTES = 64 * 1024  # enough for the last lines of any worker.log, whatever its size

_cache: dict[tuple[str, str], tuple[tuple, object]] = {}


def stat_key(path: Path) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


def cached(path: Path, kind: str, parse: Callable[[Path], object]):
    """`parse(path)`, reused while the file is unchanged; None when it is missing or unparsable."""
    key = stat_key(path)
    if key is None:
        _cache.pop((str(path), kind), None)
        return None
    hit = _cache.get((str(path), kind))
    if hit is not None and hit[0] == key:
        return hit[1]
    try:
        value = parse(path)
    except (OSError, ValueError, UnicodeDecodeError):
        value = None
    _cache[(str(path), kind)] = (key, value)
    return value


def _json(path: Path):
    return json.loads(path.read_bytes())


def _toml(path: Path):
    return tomllib.loads(path.read_text(encoding="utf-8"))


def _jsonl(path: Path) -> list[dict]:
    rows = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a torn last line (a crash mid-append)
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _tail(path: Path) -> list[str]:
    with open(path, "rb") as f:
        f.seek(max(0, os.fstat(f.fileno()).st_size - LOG_TAIL_BYTES))
        data = f.read()
    lines = data.decode("utf-8", errors="replace").splitlines()
    return lines[1:] if len(data) == LOG_TAIL_BYTES else lines  # the first may be cut


def json_file(path: Path):
    return cached(path, "json", _json)


def toml_file(path: Path):
    return cached(path, "toml", _toml)


def jsonl_rows(path: Path) -> list[dict]:
    return cached(path, "jsonl", _jsonl) or []


def log_tail(path: Path) -> list[str]:
    return cached(path, "tail", _tail) or []

