"""Checking a checkpoint against its manifest (pure, no mlx): the worker's resume and the client's
`serve`/`export` of a job still training trust only checkpoints that verify."""

from __future__ import annotations

import hashlib
from pathlib import Path

from farensed.core.formats import MANIFEST, Manifest


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(path: Path) -> Manifest | None:
    """The manifest if every listed file is present with its checksum, else None."""
    try:
        manifest = Manifest.model_validate_json((path / MANIFEST).read_bytes())
        for fname, digest in manifest.files.items():
            f = path / fname
            if f.stat().st_size != manifest.sizes[fname] or sha256_of(f) != digest:
                return None
        return manifest
    except (OSError, ValueError, KeyError):
        return None
