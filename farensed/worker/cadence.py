"""The training loop: optimizer steps until the last one (or a stop, or [evaluate] patience spent),
with the job's cadences between them: a metrics row every log_every steps, an eval every
eval_every, a checkpoint every checkpoint_every (or checkpoint_every_minutes), all at the last step.

The first step of a process pays for compiling it; that excess is measured (FirstStepClock) and
taken out of the training time.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import psutil

from farensed.worker.first_step import FirstStepClock
from farensed.worker.trainer import StopRequested

if TYPE_CHECKING:
    from farensed.worker.recipe import Recipe


class Cadence:
    """One process's share of the training loop of a run."""

    def __init__(self, run: Recipe):
        self.run, self.tr, self.every = run, run.trainer, run.spec.cadence
        self.clock = FirstStepClock()
        self.last_checkpoint = 0.0  # monotonic time of the last checkpoint (this process's start counts)

    def loop(self) -> None:
        run, tr = self.run, self.tr
        p = tr.progress
        start, base = time.monotonic(), p.elapsed
        self.last_checkpoint = time.monotonic()
        if p.step == 0 or p.eval_pending:  # step 0: the base model's loss, where the curves start
            run.evaluate()
        while p.step < tr.total and not run.stopped_early:
            if run.dist.stopping(tr.stop_requested):
                self._stop(f"stopped by signal at step {p.step}")
            start += self._timed_step()
            p.elapsed = base + time.monotonic() - start
            self._due(p.step)
        if p.eval_pending:  # the final evaluation was cut short by a stop: resume redoes it
            self._stop(f"stopped by signal during the evaluation at step {p.step}")
        p.elapsed -= self._count_compile(self.clock.settle())  # a short process: known only now

    def _due(self, s: int) -> None:
        """What falls due after step `s`: a metrics row, an eval, a checkpoint."""
        run, tr, every = self.run, self.tr, self.every
        if s % every.log_every == 0 or s == tr.total:
            run.record(tr.train_row())
        if s % every.eval_every == 0 or s == tr.total:
            run.evaluate()
        minutes = (every.checkpoint_every_minutes
                   and time.monotonic() - self.last_checkpoint >= 60 * every.checkpoint_every_minutes)
        if s % every.checkpoint_every == 0 or s == tr.total or minutes or run.stopped_early:
            run.save_checkpoint()
            self.last_checkpoint = time.monotonic()

    def _stop(self, reason: str) -> None:
        """A stop: a checkpoint first (every rank waits for rank 0's), then out with EXIT_STOPPED."""
        self.run.save_checkpoint()
        self.run.dist.barrier()
        raise StopRequested(reason)

    def _timed_step(self) -> float:
        """One step; returns the seconds to take out of the training time (the compile, once known)."""
        run, first = self.run, self.clock.first
        if first and run.compile:
            run.write_progress("compiling")  # status and watch say why the first step is slow
        t0 = time.monotonic()
        self.tr.optimizer_step()
        excess = self.clock.add(time.monotonic() - t0)
        if first:  # how long a (re)start costs
            run.log.info("first_step_done", step=self.tr.progress.step, seconds=round(time.monotonic() - t0, 3),
                         seconds_since_process_start=round(time.time() - psutil.Process().create_time(), 3))
            run.write_progress()
        return self._count_compile(excess)

    def _count_compile(self, excess: float | None) -> float:
        if excess is None:
            return 0.0
        run = self.run
        run.state = run.state.model_copy(update={"compile_seconds": round(run.state.compile_seconds + excess, 3)})
        run.log.info("compile_measured", seconds=round(excess, 3), compiled=run.compile)
        return excess
