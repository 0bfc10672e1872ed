"""Checkpoints that are complete or invisible: written into a temp folder with a checksum
manifest, fsynced, renamed into place. Resume takes the newest one that verifies."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import mlx.core as mx

from farensed.core.atomic import atomic_write_json, atomic_write_text, fsync_dir, fsync_file
from farensed.core.checkpoint_manifest import sha256_of, verify
from farensed.core.formats import (
    ADAPTERS,
    CHECKPOINT_NAME,
    CHECKPOINT_STATE,
    MANIFEST,
    METRICS_JSONL,
    OPTIMIZER,
    CheckpointState,
    Manifest,
    MetricsRow,
)
from farensed.worker.disk import check_space, save_safetensors

# No RNG file: dropout's RNG is reseeded at every step from (seed, step) (Trainer.gradient), so the
# step number restores it exactly. Checkpoints of older versions hold an rng.safetensors; it is ignored.
TENSOR_FILES = (ADAPTERS, OPTIMIZER)
METRICS_FILE = METRICS_JSONL  # the metrics rows up to the checkpoint's step


def name_for(epoch: int, step: int) -> str:
    return f"checkpoint_epoch{epoch}_step{step}"


def step_of(path: Path) -> int:
    m = CHECKPOINT_NAME.match(path.name)
    return int(m.group(2)) if m else -1


def size_of(tensors: dict[str, dict[str, mx.array]], metrics_text: str) -> int:
    """Bytes a checkpoint takes on disk, near enough (its tensors and its copy of the metrics)."""
    return sum(a.nbytes for group in tensors.values() for a in group.values()) + len(metrics_text.encode())


def save(out: Path, epoch: int, state: CheckpointState, tensors: dict[str, dict[str, mx.array]],
         metrics: list[MetricsRow], midway=lambda step, written=None: None, seen_free=lambda free: free) -> Path:
    """Write checkpoint_epoch{E}_step{S}/ atomically and return its path (NoSpace when the disk
    has less free than the checkpoint asks for, or refuses a write: nothing is left behind then)."""
    metrics_text = "".join(r.model_dump_json() + "\n" for r in metrics)
    check_space(out, size_of(tensors, metrics_text), seen_free)
    final = out / name_for(epoch, state.step)
    tmp = out / f".tmp-{final.name}.{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        _write_files(tmp, epoch, state, tensors, metrics_text, midway)
    except BaseException:  # a full disk (or a stop): the half-written folder must not hold the space
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():  # the same step reached again after a resume: replace it
        trash = out / f".trash-{final.name}.{os.getpid()}"
        os.replace(final, trash)
        shutil.rmtree(trash, ignore_errors=True)
    os.replace(tmp, final)
    fsync_dir(out)
    midway(state.step, final)  # the fault hook, once more with the checkpoint in place
    return final


def _write_files(tmp: Path, epoch: int, state: CheckpointState, tensors: dict[str, dict[str, mx.array]],
                 metrics_text: str, midway) -> None:
    for fname, arrays in tensors.items():
        save_safetensors(tmp / fname, arrays)
        fsync_file(tmp / fname)
        midway(state.step)
    atomic_write_text(tmp / METRICS_FILE, metrics_text)
    atomic_write_json(tmp / CHECKPOINT_STATE, state)
    names = sorted(p.name for p in tmp.iterdir())
    manifest = Manifest(step=state.step, epoch=epoch, files={n: sha256_of(tmp / n) for n in names},
                        sizes={n: (tmp / n).stat().st_size for n in names}, created_at=time.time())
    atomic_write_json(tmp / MANIFEST, manifest)


def candidates(out: Path) -> list[Path]:
    """Checkpoint folders, newest step first."""
    if not out.is_dir():
        return []
    return sorted((p for p in out.iterdir() if p.is_dir() and CHECKPOINT_NAME.match(p.name)), key=step_of, reverse=True)


def newest_valid(out: Path, log=None) -> Path | None:
    for path in candidates(out):
        if verify(path) is not None:
            return path
        if log is not None:
            log.warning("checkpoint_invalid", checkpoint=path.name)
    return None


def load_state(path: Path) -> tuple[CheckpointState, dict[str, dict[str, mx.array]], str]:
    """(state, tensors by file, metrics text) of a verified checkpoint."""
    state = CheckpointState.model_validate_json((path / CHECKPOINT_STATE).read_bytes())
    tensors = {f: mx.load(str(path / f)) for f in TENSOR_FILES if (path / f).exists()}
    return state, tensors, (path / METRICS_FILE).read_text(encoding="utf-8")


def clean_temp(out: Path) -> None:
    """Remove half-written checkpoints left by a crash (they were never visible)."""
    for p in out.glob(".tmp-checkpoint_*"):
        shutil.rmtree(p, ignore_errors=True)
    for p in out.glob(".trash-checkpoint_*"):
        shutil.rmtree(p, ignore_errors=True)


def prune(out: Path, keep: int, protect: set[str]) -> list[str]:
    """Delete all but the newest `keep` checkpoints that verify, and the protected ones (the best).
    One that does not verify counts for nothing (else it would push out an older good one) and is
    deleted unless protected: nothing can be resumed from it."""
    removed, good = [], 0
    for path in candidates(out):
        valid = verify(path) is not None
        good += valid
        if path.name not in protect and (not valid or good > keep):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    return removed
