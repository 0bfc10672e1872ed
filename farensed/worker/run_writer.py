"""What a run writes into its folder, in one place: rank 0 gets a RunWriter, every other rank of
a data-parallel job a NullWriter with the same methods doing nothing (rank 0 owns the run folder),
chosen once by rank, so that the run itself never asks which rank it is to write."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import mlx.core as mx

from farensed.core.atomic import atomic_write_json
from farensed.core.formats import (
    BEST_ADAPTERS,
    PROGRESS,
    TRAINING_STATE,
    AdapterConfig,
    LiveProgress,
    MetricsRow,
    TrainingState,
)
from farensed.core.jobspec import JobSpec
from farensed.core.units import GIB
from farensed.worker import checkpoint, outputs
from farensed.worker.eta import eta
from farensed.worker.tensorboard_events import Scalars

if TYPE_CHECKING:
    from farensed.worker.recipe import Recipe

Tensors = Callable[[], dict]  # what a checkpoint or an adapter folder holds, made only when written


class RunWriter:
    """Rank 0's writes: training_state.json, progress.json, the metrics, checkpoints, best adapters."""

    def __init__(self, run_dir: Path, log, keep_checkpoints: int):
        self.dir, self.log, self.keep = run_dir, log, keep_checkpoints
        self.scalars: Scalars | None = None  # [report] tensorboard, once set up

    def state(self, state: TrainingState) -> None:
        atomic_write_json(self.dir / TRAINING_STATE, TrainingState.model_validate(state.model_dump()))

    def progress(self, progress: LiveProgress) -> None:
        atomic_write_json(self.dir / PROGRESS, progress)

    def reset_metrics(self, rows: list[MetricsRow]) -> None:
        """The append-only metrics log set to exactly `rows` (a fresh start: none; a resume: the checkpoint's)."""
        outputs.rewrite_metrics(self.dir, rows)

    def metrics_row(self, row: MetricsRow) -> None:
        outputs.append_metrics(self.dir, row)
        self.scalars.add(row)
        self.log.info("step_report", **{k: v for k, v in row.model_dump().items() if v is not None})

    def checkpoint(self, tr, tensors: Tensors, saved: Callable[[str], None]) -> None:
        """Write the trainer's checkpoint; `saved(name)` points training_state.json at it before older
        ones are pruned (the newest N and the best adapters' steps stay)."""
        t0, p = time.monotonic(), tr.progress
        path = checkpoint.save(self.dir, tr.epoch, tr.checkpoint_state(), tensors(), p.metrics,
                               midway=tr.faults.in_checkpoint,
                               seen_free=lambda free: tr.faults.free_bytes(p.step, free))
        saved(path.name)
        best = {checkpoint.name_for(e, p.best_step) for e in range(p.cursor.epoch + 1)} if p.best_step else set()
        removed = checkpoint.prune(self.dir, self.keep, best)
        outputs.export_metrics(self.dir, p.metrics)
        self.log.info("checkpoint_saved", step=p.step, checkpoint=path.name,
                      seconds=round(time.monotonic() - t0, 3), pruned=removed or None)

    def best_adapters(self, weights: Tensors, config: AdapterConfig, before_write, **event) -> None:
        """adapters/ (the best adapters by the job's rule), in the folder format mlx-lm reads."""
        outputs.write_adapter_folder(self.dir / BEST_ADAPTERS, weights(), config, before_write)
        self.log.info("best_adapters_saved", **event)


class NullWriter(RunWriter):
    """Any rank but 0: the same methods, writing nothing (rank 0 writes for the job)."""

    def state(self, state: TrainingState) -> None:
        pass

    def progress(self, progress: LiveProgress) -> None:
        pass

    def reset_metrics(self, rows: list[MetricsRow]) -> None:
        pass

    def metrics_row(self, row: MetricsRow) -> None:
        pass

    def checkpoint(self, tr, tensors: Tensors, saved: Callable[[str], None]) -> None:
        pass

    def best_adapters(self, weights: Tensors, config: AdapterConfig, before_write, **event) -> None:
        pass


def for_rank(is_root: bool, run_dir: Path, log, keep_checkpoints: int) -> RunWriter:
    return (RunWriter if is_root else NullWriter)(run_dir, log, keep_checkpoints)


# --- what the state and progress files say -----------------------------------------------
def state_fields(run: Recipe, status: str, reason: str | None) -> dict:
    """training_state.json's fields that change as the run goes (the trainer's, once there is one)."""
    upd = {"status": status, "reason": reason, "worker_pid": os.getpid(), "updated_at": time.time(),
           "checkpoint": run.last_checkpoint, "ranks": list(run.dist.ranks)}
    if run.trainer is None:
        return upd
    tr, planner, p = run.trainer, run.planner, run.trainer.progress
    return upd | {"step": p.step, "total_steps": tr.total, "epoch": tr.epoch, "micro_batch": planner.narrowest,
                  "grad_checkpoint": planner.memory_model.grad_checkpoint,
                  "grad_accumulation": planner.accumulation(), "memory_model": planner.memory_model,
                  "downshifts": planner.downshifts, "best_val_loss": p.best_val_loss, "best_step": p.best_step,
                  "best_score": p.best_score}


def live_progress(run: Recipe, phase: str, scoring: dict) -> LiveProgress:
    """progress.json while the trainer runs; `scoring` sets scored, to_score and eta_seconds."""
    tr, planner, p = run.trainer, run.planner, run.trainer.progress
    last = next((r for r in reversed(p.metrics) if r.kind == "train"), None)
    sps = last.steps_per_sec if last else None
    return LiveProgress(
        worker_pid=os.getpid(), step=p.step, total_steps=tr.total, epoch=tr.epoch,
        train_loss=last.train_loss if last else None, val_loss=p.val_loss,
        best_val_loss=p.best_val_loss, learning_rate=last.learning_rate if last else None,
        tokens_per_sec=last.tokens_per_sec if last else None, steps_per_sec=sps,
        active_memory_gb=round(mx.get_active_memory() / GIB, 4),
        peak_memory_gb=last.peak_memory_gb if last else None,
        budget_gb=run.spec.memory.budget_gb or None, micro_batch=planner.narrowest,
        grad_accumulation=planner.accumulation(), grad_checkpoint=planner.memory_model.grad_checkpoint,
        downshifts=len(planner.downshifts), last_checkpoint=run.last_checkpoint, split=tr.last_split,
        phase=phase, updated_at=time.time(), **({"eta_seconds": eta(run, sps)} | scoring))


def loading_progress(st: TrainingState, spec: JobSpec) -> LiveProgress:
    """progress.json while loading: what the last worker left in training_state.json."""
    return LiveProgress(
        worker_pid=os.getpid(), step=st.step, total_steps=st.total_steps, epoch=st.epoch,
        micro_batch=st.micro_batch, grad_accumulation=st.grad_accumulation or spec.training.grad_accumulation,
        phase="loading", last_checkpoint=st.checkpoint, updated_at=time.time())
