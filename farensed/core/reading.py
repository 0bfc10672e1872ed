"""Reading an on-disk format that may be missing, or not yet (or no longer) valid: its model, or None.

formats.read_model raises StateError naming the file; the readers of run folders and status.json
(which a running job writes as it goes) want None instead.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from farensed.core.errors import StateError
from farensed.core.formats import read_model


def read_or_none(path: Path, model):
    """`model` read from `path`, or None when the file is missing or does not validate."""
    try:
        return read_model(path, model)
    except StateError:
        return None


def set_aside(path: Path) -> Path:
    """Rename an unreadable state file out of the way (`NAME.unreadable-TIME`), its bytes kept for a
    person to look at; never over an earlier one."""
    stamp, n = int(time.time()), 1
    aside = path.with_name(f"{path.name}.unreadable-{stamp}")
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.unreadable-{stamp}-{n}")
    os.rename(path, aside)
    return aside
