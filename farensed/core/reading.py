"""Reading an on-disk format that may be missing, or not yet (or no longer) valid: its model, or None.

formats.read_model raises StateError naming the file; the readers of run folders and status.json
(which a running job writes as it goes) want None instead.
"""

from __future__ import annotations

from pathlib import Path

from farensed.core.errors import StateError
from farensed.core.formats import read_model


def read_or_none(path: Path, model):
    """`model` read from `path`, or None when the file is missing or does not validate."""
    try:
        return read_model(path, model)
    except StateError:
        return None
