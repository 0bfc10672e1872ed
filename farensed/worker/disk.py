"""Writing tensors when the disk may be full: the space check before a checkpoint, and an
mx.save_safetensors that leaves no temporary file behind when the disk refuses it.

MLX reports a failed write as RuntimeError("[write] Unable to write N bytes to file.") with no
errno; the partial file would hold the last free bytes for ever. Either way the job pauses as
"no space" (EXIT_NO_SPACE): restarting would only hit the same full disk.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import mlx.core as mx

from farensed.core.errors import FarensedError

MARGIN_FLOOR = 1 << 20  # the small files written beside a checkpoint (state, progress, metrics, manifest)


class NoSpace(FarensedError):
    """Not enough free disk for a write (the job pauses instead of leaving a broken file)."""


def fmt_bytes(n: float) -> str:
    """1.2 GB, 412 kB, 0 B (powers of 1000, as Finder and df -H show them)."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def space_needed(checkpoint_bytes: int) -> int:
    """Free disk a checkpoint of `checkpoint_bytes` asks for: itself, and as much again for what
    follows it before the oldest one is pruned (the best and final adapters, the small files)."""
    return 2 * checkpoint_bytes + MARGIN_FLOOR


def check_space(out: Path, checkpoint_bytes: int, seen_free=lambda free: free) -> None:
    """NoSpace (nothing written) when `out`'s disk has less free than a checkpoint asks for."""
    need, free = space_needed(checkpoint_bytes), seen_free(shutil.disk_usage(out).free)
    if free < need:
        raise NoSpace(f"{out}: {fmt_bytes(free)} free, a checkpoint of {fmt_bytes(checkpoint_bytes)} needs"
                      f" {fmt_bytes(need)}; free some space, then farensectl resume")


def save_safetensors(path: Path, arrays: dict[str, mx.array]) -> None:
    """mx.save_safetensors; a write the disk refuses removes the partial file and raises NoSpace."""
    try:
        mx.save_safetensors(str(path), arrays)
    except RuntimeError as e:
        if "Unable to write" not in str(e):
            raise
        path.unlink(missing_ok=True)
        size = sum(a.nbytes for a in arrays.values())
        free = shutil.disk_usage(path.parent).free
        raise NoSpace(f"{path.parent}: writing {fmt_bytes(size)} of tensors failed ({fmt_bytes(free)} free on its disk:"
                      f" full, or failing); free some space, then farensectl resume") from None
