"""The optimizer step: a step's examples in a deterministic order, computed in micro-batches (the
micro-step's math is worker/step.py's), redone after out-of-memory, guarded against non-finite
values, applied once; and the validation loss, the metrics rows, the progress a checkpoint keeps.
Owned here, not mlx_lm.tuner's; the loop around it is worker/cadence.py's."""

from __future__ import annotations

import time
from collections import Counter

import mlx.core as mx
import numpy as np

from farensed.core.errors import FarensedError
from farensed.core.formats import CheckpointState, Cursor, MemoryModel, MetricsRow, Progress
from farensed.core.jobspec import JobSpec
from farensed.core.units import GIB
from farensed.memory import ladder
from farensed.memory import plan as memplan
from farensed.worker import batching
from farensed.worker.distributed import Solo
from farensed.worker.faults import Faults
from farensed.worker.grad_checkpoint import set_grad_checkpoint
from farensed.worker.memory import MemoryPlanner, OutOfMemory
from farensed.worker.schedule import learning_rate, steps_per_epoch, total_steps
from farensed.worker.step import StepFunctions, all_finite

MAX_NONFINITE = 3


class Diverged(FarensedError):
    """Loss or gradient non-finite MAX_NONFINITE steps in a row."""


class EvalInterrupted(FarensedError):
    """A stop arrived during an evaluation; it is redone first when the run resumes."""


class StopRequested(FarensedError):
    """SIGTERM/SIGINT: a checkpoint was written, the worker exits EXIT_STOPPED."""


class Trainer:
    """The optimizer step (Trainer.optimizer_step: one update over an effective batch, its micro-steps'
    math in worker/step.py), evaluation, metrics rows and the progress a checkpoint keeps. How a
    step is split into micro-batches is the MemoryPlanner's, handed in."""

    def __init__(self, spec: JobSpec, model, optimizer, train: batching.Tokenized,
                 valid: batching.Tokenized | None, planner: MemoryPlanner, faults: Faults, log,
                 compile: bool = True, dist=None):
        self.spec, self.model, self.optimizer, self.log = spec, model, optimizer, log
        self.dist = dist or Solo()  # data-parallel: this rank's share of each step, sums over ranks
        self.train, self.valid, self.faults, self.compile = train, valid, faults, compile
        self.total = total_steps(spec.training, len(train.tokens))
        self.per_epoch = steps_per_epoch(spec.training, len(train.tokens))
        self.progress = Progress()
        self.stop_requested = False
        self._plans: dict[int, list[np.ndarray]] = {}
        self._lengths, self._targets = train.lengths, train.n_targets
        self.fingerprint = train.fingerprint()
        self.budget = int(spec.memory.budget_gb * GIB)
        self._fns: dict[bool, StepFunctions] = {}
        self.planner = planner
        planner.attach(self.functions)
        self._window_time, self._window_steps, self._window_real_tokens = 0.0, 0, 0
        self._window_splits: Counter[str] = Counter()
        self._window_peak, self.last_split = 0, None

    @property
    def effective_batch(self) -> int:
        return self.spec.training.effective_batch

    def functions(self, gc: bool) -> StepFunctions:
        """The step functions for a checkpointing mode, put in use with the model's blocks switched
        to it: one compiled set per mode (switching back reuses what was compiled)."""
        set_grad_checkpoint(self.model, gc)
        if gc not in self._fns:
            self._fns[gc] = StepFunctions(self.model, self.optimizer, self.spec.training.grad_clip, self.compile)
        self.fns = self._fns[gc]
        return self.fns

    def recompile(self) -> None:
        """Drop the compiled step functions: they capture the optimizer state object, which a resume replaces."""
        self._fns = {}
        self.functions(self.planner.memory_model.grad_checkpoint)

    def agree_memory(self) -> None:
        """Data-parallel with a budget: every rank takes rank 0's memory model, so that all split,
        correct and switch checkpointing alike (each rank's own measurements differ a little)."""
        if self.dist.size > 1 and self.planner.memory_model.budget_bytes:
            root = self.dist.from_root(lambda: self.planner.memory_model.model_dump(mode="json"))
            self.planner.put(MemoryModel.model_validate(root))

    def plan(self, epoch: int) -> list[np.ndarray]:
        if epoch not in self._plans:
            self._plans = {epoch: batching.epoch_plan(self._lengths, self.effective_batch,
                                                      self.spec.training.seed, epoch)}
        return self._plans[epoch]

    def step_lengths(self, epoch: int = 0) -> list[list[int]]:
        """Token lengths of each step of an epoch, in order."""
        return [self._lengths[idx].tolist() for idx in self.plan(epoch)]

    def step_examples(self) -> np.ndarray:
        return self.plan(self.progress.cursor.epoch)[self.progress.cursor.index]

    # --- one step -------------------------------------------------------------------
    def gradient(self, idx: np.ndarray, sizes: list[int]):
        """Summed loss, target count and summed gradient of the examples `idx`, in micro-batches of
        `sizes`, two in flight: the next is queued (async) while the device runs one, so it never
        waits for Python, and no further: on CUDA a queued micro-batch holds memory from when it
        is queued (on an H200 whole steps queued at once went over a budget that their
        micro-batches, measured alone, fitted), and two in flight is what the memory probe
        measures. With a budget the step's peak is then
        held against it: over it, the step's largest micro-batch is blamed (the model is
        corrected and the step redone; nothing was applied)."""
        mx.random.seed(self.spec.training.seed * 1_000_003 + self.progress.step)
        acc, loss, ntoks, self.step_peak = None, mx.array(0.0), mx.array(0.0), 0
        mx.reset_peak_memory()
        try:
            for mb in batching.micro_batches(idx, sizes):
                inputs, targets, mask = batching.padded(self.train, mb, self.spec.training.max_seq_length)
                if acc is None:
                    self.faults.at_step(self.progress.step + 1)
                running = acc
                part, n, acc = self.fns.micro(mx.array(inputs), mx.array(targets), mx.array(mask), acc)
                loss, ntoks = loss + part, ntoks + n
                mx.async_eval(loss, ntoks, acc)
                if running is not None:
                    mx.eval(running)  # the one before is done: at most two in flight
            mx.eval(loss, ntoks, acc)
        except RuntimeError as e:
            if ladder.is_oom_message(str(e)):
                rows, width = self._largest(idx, sizes)
                raise OutOfMemory(str(e).splitlines()[0], "runtime_error", rows, width) from None
            raise
        self.step_peak = mx.get_peak_memory()
        if self.budget and self.step_peak > self.budget:
            rows, width = self._largest(idx, sizes)
            raise OutOfMemory(f"peak memory {self.step_peak / GIB:.4g} GB over the budget {self.budget / GIB:.4g} GB"
                              f" in a step whose largest micro-batch was {rows} x {width} tokens", "budget",
                              rows, width, self.step_peak)
        return loss, ntoks, acc

    def _largest(self, idx: np.ndarray, sizes: list[int]) -> tuple[int, int]:
        """The micro-batch of a step with the most tokens: the one blamed when queued work runs out of memory."""
        lengths = self._lengths[idx].tolist()
        return max(memplan.shapes(lengths, sizes, self.spec.training.max_seq_length), key=lambda s: s[0] * s[1])

    def optimizer_step(self) -> None:
        """Compute and apply step progress.step+1 (one optimizer update), redoing it split narrower after
        out-of-memory."""
        started, step = time.monotonic(), self.progress.step + 1
        idx = self.step_examples()
        while True:
            sizes = self.planner.split(idx, step)  # the whole step decides checkpointing, alike on every rank
            mine = idx
            if self.dist.size > 1:  # then each rank splits its own share under the agreed model
                self.agree_memory()
                mine = self.dist.share(idx, self._lengths)
                sizes = self.planner.split(mine, step)
            try:
                # every rank computes its share; the sum over ranks is the whole step's
                loss, ntoks, grad = self.dist.step_sum(lambda m=mine, s=sizes: self.gradient(m, s),
                                                       self.model.trainable_parameters(), self.stop_requested)
                break
            except OutOfMemory as e:
                self.planner.correct(e, step)
        n = int(self._targets[idx].sum())
        if self.faults.nan_at(step):
            loss = mx.array(float("nan"))
        if n > 0 and all_finite(loss, grad):
            self.optimizer.learning_rate = learning_rate(self.spec.training, step, self.total)
            self.fns.update(grad, mx.array(float(n)))
            mx.eval(self.model.trainable_parameters(), self.optimizer.state)
            self.progress.nonfinite_streak = 0
            self.progress.window_loss_sum += loss.item()
            self.progress.window_tokens += n
        elif n > 0:
            self._skip_nonfinite()
        self.progress.tokens_seen += int(self._lengths[idx].sum())
        self._window_real_tokens += int(self._lengths[idx].sum())
        self._window_time += time.monotonic() - started
        self._window_splits[memplan.label(sizes)] += 1
        self._window_peak, self.last_split = max(self._window_peak, self.step_peak), sizes
        self._advance()

    def _skip_nonfinite(self) -> None:
        self.progress.nonfinite_streak += 1
        self.progress.skipped_nonfinite += 1
        self.log.warning("nonfinite_step_skipped", step=self.progress.step + 1, streak=self.progress.nonfinite_streak)
        if self.progress.nonfinite_streak >= MAX_NONFINITE:
            raise Diverged(f"loss or gradient was NaN/inf for {MAX_NONFINITE} steps in a row (last at step"
                           f" {self.progress.step + 1}); lower training.learning_rate or check the data")

    def _advance(self) -> None:
        self.progress.step += 1
        self._window_steps += 1
        c = self.progress.cursor
        self.progress.cursor = Cursor(epoch=c.epoch + 1, index=0) if c.index + 1 >= self.per_epoch else \
            Cursor(epoch=c.epoch, index=c.index + 1)

    # --- evaluation and metrics --------------------------------------------------------
    def evaluate(self) -> float | None:
        """Token-weighted validation loss over the validation set (or its first val_batches)."""
        if self.valid is None or not self.valid.tokens:
            return None
        self.model.eval()
        order = np.argsort(self.valid.lengths, kind="stable")
        batches = batching.chunks(order, self.spec.training.batch_size)
        if self.spec.cadence.val_batches:
            batches = batches[: self.spec.cadence.val_batches]
        total, count = mx.array(0.0), mx.array(0.0)
        mbs = [m for b in batches for m in self._eval_split(b)]
        for mb in self.dist.rounds(mbs):  # ranks take the micro-batches in turns
            self.faults.in_eval(self.progress.step)
            # a 7B eval can take a minute: do not make the stop wait for it
            if self.dist.agree_stop(self.stop_requested):
                self.model.train()
                raise EvalInterrupted(f"evaluation at step {self.progress.step} interrupted")
            if mb is None:
                continue
            arrays = batching.padded(self.valid, mb, self.spec.training.max_seq_length)
            loss, n = self.fns.evaluate_loss(*(mx.array(a) for a in arrays))
            total, count = total + loss, count + n
            mx.eval(total, count)
        total, count = self.dist.sum(total, count)
        self.model.train()
        return total.item() / max(count.item(), 1.0)

    def _eval_split(self, batch: np.ndarray) -> list[np.ndarray]:
        """An eval batch split as training would split it (forward only needs less); else one by one."""
        sizes = memplan.split(self.planner.memory_model, self.valid.lengths[batch].tolist())
        return batching.micro_batches(batch, sizes or [1] * len(batch))

    @property
    def epoch(self) -> int:
        """The epoch of the last step taken (the cursor already points at the next one)."""
        c = self.progress.cursor
        return c.epoch if c.index else max(c.epoch - 1, 0)

    def row(self, kind: str, **values) -> MetricsRow:
        p, planner = self.progress, self.planner
        return MetricsRow(kind=kind, step=p.step, epoch=self.epoch, micro_batch=planner.narrowest,
                          grad_accumulation=planner.accumulation(), tokens_seen=p.tokens_seen,
                          elapsed=round(p.elapsed, 3), grad_checkpoint=planner.memory_model.grad_checkpoint, **values)

    def train_row(self) -> MetricsRow:
        dt = max(self._window_time, 1e-9)
        loss = self.progress.window_loss_sum / self.progress.window_tokens if self.progress.window_tokens else None
        row = self.row("train", train_loss=loss,
                       learning_rate=learning_rate(self.spec.training, self.progress.step, self.total),
                       tokens_per_sec=round(self._window_real_tokens / dt, 1),
                       steps_per_sec=round(self._window_steps / dt, 4),
                       active_memory_gb=round(mx.get_active_memory() / GIB, 4),
                       peak_memory_gb=round(self._window_peak / GIB, 4),
                       splits=" ".join(f"{k}:{v}" for k, v in sorted(self._window_splits.items())) or None)
        self.progress.window_loss_sum, self.progress.window_tokens = 0.0, 0
        self._window_splits, self._window_peak = Counter(), 0
        # throughput counts training steps only, not the evals and checkpoints between them
        self._window_time, self._window_steps, self._window_real_tokens = 0.0, 0, 0
        return row

    # --- checkpoint state ------------------------------------------------------------
    def checkpoint_state(self) -> CheckpointState:
        """The trainer's progress as it stands, with what a resume must find again beside it."""
        planner = self.planner
        return CheckpointState(progress=self.progress.model_copy(deep=True), micro_batch=planner.narrowest,
                               grad_accumulation=planner.accumulation(),
                               grad_checkpoint=planner.memory_model.grad_checkpoint,
                               rng_seed_base=self.spec.training.seed, data_fingerprint=self.fingerprint,
                               memory_model=planner.memory_model)

    def resume(self, cs: CheckpointState, metrics: list[MetricsRow]) -> None:
        """Continue from a checkpoint: its progress and metrics rows, and step functions compiled
        anew (they captured the optimizer state object that loading the checkpoint replaced)."""
        self.progress = cs.progress.model_copy(update={"metrics": list(metrics)}, deep=True)
        self.recompile()
