"""An export is written into a hidden temporary folder beside its destination and renamed into
place only when complete, so a full disk, a crash or a stop half-way leaves no partial folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from farensed.core.atomic import fsync_dir

PARTIAL = ".partial-"


def partial_dir(dest: Path) -> Path:
    """The temporary folder (same parent, so the final rename is atomic), named after this process."""
    return dest.parent / f".{dest.name}{PARTIAL}{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clear_stale(dest: Path) -> list[Path]:
    """Remove temporary folders of earlier exports to `dest` whose process is gone (killed -9)."""
    removed = []
    for p in dest.parent.glob(f".{dest.name}{PARTIAL}*"):
        pid = p.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def publish(tmp: Path, dest: Path) -> None:
    """Put the finished `tmp` at `dest` (an older `dest` is replaced only now, when the new one is whole)."""
    old = dest.parent / f".{dest.name}.old-{os.getpid()}"
    if dest.exists():
        os.replace(dest, old)
    os.replace(tmp, dest)
    fsync_dir(dest.parent)
    shutil.rmtree(old, ignore_errors=True)
