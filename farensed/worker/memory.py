"""The worker's side of the memory plan: a MemoryPlanner holds the memory model in force and the
downshifts so far, splits each step by it, measures it on the job's own data (memory_probe.py) and
folds out-of-memory events into it. The policy itself is pure, in farensed.memory.plan.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from functools import cached_property

import mlx.core as mx
import numpy as np

from farensed.core.errors import FarensedError
from farensed.core.formats import Downshift, MemoryMode, MemoryModel
from farensed.core.jobspec import JobSpec
from farensed.core.units import GIB
from farensed.memory import plan as memplan
from farensed.worker import batching
from farensed.worker.memory_probe import MemoryProbe
from farensed.worker.model import BadJob
from farensed.worker.step import StepFunctions


class OutOfMemory(FarensedError):
    """A micro-step ran out of memory or over the budget; the model is corrected, the step redone."""

    def __init__(self, reason: str, source: str, rows: int, width: int, peak: int = 0, largest: int = 0):
        super().__init__(reason)
        self.source, self.rows, self.width, self.peak = source, rows, width, peak
        self.largest = largest or rows * width  # tokens of the step's largest micro-batch (queued work)


class OomExhausted(FarensedError):
    """Nothing left on the ladder."""


def settings_key(spec: JobSpec, model_path: str, fingerprint: str, compile: bool) -> str:
    """What a measured model holds for: a resume with other settings measures again."""
    try:
        device = str(mx.device_info().get("device_name"))
    except Exception:  # older mlx: no device_info
        device = str(mx.default_device())
    info = {"model": model_path, "lora": spec.lora.model_dump(), "max_seq_length": spec.training.max_seq_length,
            "batch_size": spec.training.batch_size, "memory": spec.memory.model_dump(), "data": fingerprint,
            "compile": compile, "mlx": mx.__version__, "device": device, "plan": 2}  # plan: how models are measured
    return hashlib.sha256(json.dumps(info, sort_keys=True).encode()).hexdigest()[:16]


def unmeasured(spec: JobSpec, key: str) -> MemoryModel:
    """The plan without a budget: micro-batches of batch_size, nothing measured."""
    gc, budget = spec.memory.grad_checkpoint, spec.memory.budget_gb
    why = "checkpointing on: the job asks for it (memory.grad_checkpoint)" if gc else "checkpointing off"
    return MemoryModel(key=key, rows_cap=spec.training.batch_size, rows_floor=spec.memory.min_micro_batch,
                       max_seq_length=spec.training.max_seq_length, grad_checkpoint=gc,
                       budget_bytes=int(budget * GIB) if budget else None,
                       usable_bytes=int(budget * GIB * (1 - memplan.MARGIN)) if budget else None,
                       modes=[MemoryMode(grad_checkpoint=gc)], why=why)


def _replace(model: MemoryModel, m: MemoryMode) -> MemoryModel:
    return model.model_copy(update={"modes": [x for x in model.modes if x.grad_checkpoint != m.grad_checkpoint] + [m]})


def _full_width(model: MemoryModel, steps) -> bool:
    return all(memplan.split(model, s) == [len(b) for b in batching.chunks(np.arange(len(s)), model.rows_cap)]
               for s in steps)


class MemoryPlanner:
    """The memory model in force and the downshifts so far: how every step is split into
    micro-batches, measured (with a budget) and corrected after out-of-memory. The trainer it is
    handed to attaches its step functions, so that a change of checkpointing mode takes effect."""

    def __init__(self, spec: JobSpec, data: batching.Tokenized, model: MemoryModel, probe: MemoryProbe, log):
        self.spec, self.lengths, self.probe, self.log = spec, data.lengths, probe, log
        self.memory_model = model
        self.downshifts: list[Downshift] = []
        self._functions: Callable[[bool], StepFunctions] | None = None

    def attach(self, functions: Callable[[bool], StepFunctions]) -> None:
        """The trainer's step functions for a mode (switching the model's blocks to it)."""
        self._functions = functions
        functions(self.memory_model.grad_checkpoint)

    def put(self, model: MemoryModel) -> None:
        """Put `model` in force (its checkpointing mode with it)."""
        self.memory_model = model
        self._functions(model.grad_checkpoint)

    # --- figures of the model in force ----------------------------------------------------
    @property
    def widest(self) -> int:
        """Padded width of the longest training example."""
        return memplan.padded_width(int(self.lengths.max()), self.spec.training.max_seq_length)

    @property
    def narrowest(self) -> int:
        """The micro-batch the longest steps get (training_state's micro_batch; the daemon halves it)."""
        return max(memplan.rows_at(self.memory_model, self.widest), 1)

    def accumulation(self) -> int:
        return math.ceil(self.spec.training.effective_batch / self.narrowest)

    @cached_property
    def first_epoch(self) -> list[np.ndarray]:
        """Epoch 0's steps (example indices, as the trainer takes them): what the model is measured on."""
        return batching.epoch_plan(self.lengths, self.spec.training.effective_batch, self.spec.training.seed, 0)

    def step_lengths(self) -> list[list[int]]:
        """Token lengths of each step of epoch 0, in order: what the memory plan is made for."""
        return [self.lengths[idx].tolist() for idx in self.first_epoch]

    # --- measuring ---------------------------------------------------------------------
    def with_mode(self, model: MemoryModel, gc: bool) -> tuple[MemoryModel, float]:
        """`model` with the mode `gc` added: measured when there is a budget, else plain; and the
        seconds its first call spent compiling."""
        if model.budget_bytes:
            self.put(model.model_copy(update={"grad_checkpoint": gc}))
            m, compiling = self.probe.measure_mode(self._functions(gc).micro, model, gc, self.first_epoch)
        else:
            m, compiling = MemoryMode(grad_checkpoint=gc), 0.0
        self.put(model)  # measuring switched the trainer's mode
        return _replace(model, m), compiling

    def establish(self, model: MemoryModel, total: int, per_epoch: int) -> MemoryModel:
        """Measure the model (only with a budget; the job takes `total` steps, `per_epoch` an epoch):
        a bad job when the budget cannot hold the model, or one example of the
        longest bucket even with checkpointing. The seconds the probe's first runs spent compiling
        MLX's kernels (the first step would have paid them) are logged apart."""
        if not model.budget_bytes:
            return model
        t0, spec = time.monotonic(), self.spec
        steps = self.step_lengths()
        floor = self.probe.floor_bytes()
        if floor > model.budget_bytes:
            raise BadJob(f"memory.budget_gb {spec.memory.budget_gb:g} is smaller than the model itself: its weights,"
                         f" adapters and optimizer state take {floor / GIB:.2f} GB before any example; set budget_gb"
                         f" to well above that, or use a smaller (4-bit) model")
        model, compiling = self.with_mode(model, spec.memory.grad_checkpoint)
        skipped = None
        if not spec.memory.grad_checkpoint and not _full_width(model, steps):
            # narrower without: is checkpointing, with wider micro-batches, faster?
            if memplan.checkpointing_could_win(model, steps):
                model, more = self.with_mode(model, True)
                compiling += more
            else:
                skipped = memplan.epoch_seconds(model, False, steps)
        model = memplan.choose(model, steps)
        if skipped is not None and not model.grad_checkpoint:
            model = model.model_copy(update={"why": f"checkpointing off: not measured, as it could not be"
                                                    f" {memplan.PREFER_PLAIN - 1:.0%} faster: an epoch takes an"
                                                    f" estimated {skipped:.1f} s without it, and it recomputes every"
                                                    f" block's forward"})
        if any(memplan.split(model, s) is None for s in steps):
            raise BadJob(memplan.too_small(model, int(self.lengths.max())))
        model = model.model_copy(update={"probe_seconds": round(time.monotonic() - t0 - compiling, 3)})
        epoch = memplan.epoch_seconds(model, model.grad_checkpoint, steps) or 0.0
        self._log_measured(model, compiling, epoch * total / max(per_epoch, 1))
        return model

    def _log_measured(self, model: MemoryModel, compiling: float, job: float) -> None:
        share = round(model.probe_seconds / job, 4) if job else None
        self.log.info("memory_measured", seconds=model.probe_seconds, share_of_job=share,
                      compile_seconds=round(compiling, 3), estimated_job_seconds=round(job, 1),
                      grad_checkpoint=model.grad_checkpoint, why=model.why,
                      points=sum(len(m.points) for m in model.modes), model=memplan.describe(model))

    def fold_deaths(self, downshifts: list[Downshift]) -> None:
        """The daemon's records of this job's out-of-memory deaths, folded into the model in force."""
        self.downshifts = list(downshifts)
        self.put(self.ensure_measured(memplan.fold_deaths(self.memory_model, self.downshifts, self.step_lengths())))

    def ensure_measured(self, model: MemoryModel) -> MemoryModel:
        """After the daemon's ladder switched checkpointing on: that mode measured, if there is a budget."""
        m = memplan.mode(model)
        if model.budget_bytes and (m is None or m.base_bytes is None):
            measured, _ = self.with_mode(model, model.grad_checkpoint)
            return _replace(model, memplan.mode(measured).model_copy(update={"token_cap": m.token_cap if m else None}))
        return model

    # --- during training ---------------------------------------------------------------
    def split(self, idx: np.ndarray, step: int) -> list[int]:
        """Step `step`'s micro-batch sizes; checkpointing goes on when not even the floor fits without."""
        lengths = self.lengths[idx].tolist()
        sizes = memplan.split(self.memory_model, lengths)
        if sizes is None and not self.memory_model.grad_checkpoint:
            self.use_checkpointing(f"{len(lengths)} examples up to {max(lengths)} tokens do not fit without it", step)
            sizes = memplan.split(self.memory_model, lengths)
        if sizes is None:
            raise OomExhausted(memplan.too_small(self.memory_model, max(lengths)))
        return sizes

    def use_checkpointing(self, why: str, step: int) -> None:
        """The ladder's last rung (measured first when there is a budget and it was not yet)."""
        model = self.memory_model
        if memplan.mode(model, True) is None:
            model, _ = self.with_mode(model, True)
        self.log.warning("grad_checkpoint_on", step=step, why=why)
        self.put(model.model_copy(update={"grad_checkpoint": True, "why": f"checkpointing on: {why}"}))

    def correct(self, e: OutOfMemory, step: int) -> None:
        """Fold an out-of-memory event of step `step` into the model; the step is then split again
        and redone. Every figure comes from the event, so all ranks of a data-parallel job correct alike."""
        mx.clear_cache()
        tokens = e.rows * e.width
        if e.source == "budget":
            self.put(memplan.after_overrun(self.memory_model, tokens, e.peak))
        else:
            self.put(memplan.after_oom(self.memory_model, e.largest, tokens))
        to = memplan.rows_at(self.memory_model, e.width)
        if to == 0 and not self.memory_model.grad_checkpoint:
            self.use_checkpointing(f"{e.rows} x {e.width} tokens ran out of memory and nothing narrower is left", step)
            to = memplan.rows_at(self.memory_model, e.width)
        gc = self.memory_model.grad_checkpoint
        self.downshifts.append(Downshift(step=step, from_micro_batch=e.rows, to_micro_batch=to, grad_checkpoint=gc,
                                         reason=str(e), source=e.source, at=time.time(), tokens=tokens, width=e.width))
        self.memory_model = self.memory_model.model_copy(update={"downshifts_seen": len(self.downshifts)})
        self.log.warning("oom_downshift", step=step, width=e.width, micro_batch=e.rows, to_micro_batch=to,
                         grad_checkpoint=gc, reason=str(e))
        if to == 0:
            raise OomExhausted(memplan.too_small(self.memory_model, int(self.lengths.max())) + f" (last: {e})")
