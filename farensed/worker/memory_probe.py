"""Measuring a checkpointing mode on the job's own micro-batches (for worker.memory's planner).

The probe runs forward + backward on real micro-batches and applies no update: the weights,
the optimizer state and the data cursor are untouched, and every step reseeds the RNG, so a
run that measured is the same run as one that did not.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten

from farensed.core.formats import MemoryMode, MemoryModel, ProbePoint
from farensed.memory import ladder
from farensed.memory import plan as memplan
from farensed.worker import batching

MAX_PROBES = 4  # micro-batch shapes measured a mode, at most (the probe's cost: 2% of a guide-size job)
CLOSE_ENOUGH = 1.15  # the search stops once the fewest tokens over is within this of the most that fit

Micro = Callable  # StepFunctions.micro: (inputs, targets, mask, acc) -> (loss, ntoks, grad)


class MemoryProbe:
    """Peaks and times of the compiled micro-step on the job's training data, for one model and optimizer."""

    def __init__(self, data: batching.Tokenized, max_seq_length: int, model, optimizer):
        self.data, self.max_seq_length, self.model, self.optimizer = data, max_seq_length, model, optimizer

    def floor_bytes(self) -> float:
        """Memory held before any example: weights, adapters, optimizer state, plus the gradient
        accumulator a step keeps between its micro-batches."""
        mx.eval(self.model.parameters(), self.optimizer.state)
        trainable = sum(v.nbytes for _, v in tree_flatten(self.model.trainable_parameters()))
        return float(mx.get_active_memory() + trainable)

    def width(self, idx: np.ndarray) -> int:
        return memplan.padded_width(int(self.data.lengths[idx].max()), self.max_seq_length)

    def measure_mode(self, micro: Micro, model: MemoryModel, gc: bool,
                     plan: list[np.ndarray]) -> tuple[MemoryMode, float]:
        """Measure one checkpointing mode (`micro` compiled for it) on the job's own micro-batches
        (`plan`: epoch 0's steps): the longest example alone, then the largest shape the job's
        steps can form, then halving between the most tokens that fitted and the fewest that did
        not (until within CLOSE_ENOUGH, MAX_PROBES shapes at most), trying only shapes whose fitted
        line stays within the budget (a probe must not itself run far over it). No micro-batch
        above the largest fitted is planned (token_cap) unless the largest shape fitted. Returns
        the mode and the first run's compiling seconds (not the probe's cost: the first step
        would have paid them)."""
        floor, usable, budget = self.floor_bytes(), model.usable_bytes, model.budget_bytes
        steps = [self.data.lengths[idx].tolist() for idx in plan]
        where = memplan.candidate_shapes(steps, model.rows_cap, model.max_seq_length)
        longest = np.argsort(-self.data.lengths, kind="stable")
        first, compiling = self._measure(micro, longest[:1], usable)
        if first is None:  # MLX out of memory on one example: this mode cannot run the longest steps
            return MemoryMode(grad_checkpoint=gc, token_cap=self.width(longest[:1]) - 1), compiling
        points = [first]
        tokens = first.rows * first.width
        fit, over = (tokens, None) if first.peak_bytes <= usable else (0, tokens)
        for round_ in range(MAX_PROBES - 1):
            if over is not None and over <= fit * CLOSE_ENOUGH:
                break
            line = memplan.measured(gc, points, floor)
            safe = [s for s in where if memplan.line(line, s[0] * s[1]) <= budget]
            shape = memplan.next_probe(safe, fit, over, first=round_ == 0)
            if shape is None:
                break
            step, at = where[shape]
            point, _ = self._measure(micro, plan[step][at:at + shape[0]], usable)
            if point is not None:
                points.append(point)
            tokens = shape[0] * shape[1]
            if point is not None and point.peak_bytes <= usable:
                fit = max(fit, tokens)
            else:
                over = tokens if over is None else min(over, tokens)
        cap = None if fit >= max(r * w for r, w in where) else fit or over - 1  # none fitted: below the smallest over
        return memplan.measured(gc, points, floor, token_cap=cap), compiling

    def _measure(self, micro: Micro, idx: np.ndarray, usable: int) -> tuple[ProbePoint | None, float]:
        """One real micro-batch shape: a first run (which also compiles it) and, when that stayed within
        `usable`, a second one for the steady peak and the time (on CUDA a later run peaks higher
        than the first: the host runs further ahead of the device). The point (None when MLX ran out
        of memory) and the first run's excess over the second (compiling)."""
        arrays = tuple(mx.array(a) for a in batching.padded(self.data, idx, self.max_seq_length))
        rows, width = (int(n) for n in arrays[2].shape)
        first = _run(micro, arrays)
        if first is None:
            return None, 0.0
        point = ProbePoint(rows=rows, width=width, peak_bytes=int(first[0]))
        if first[0] > usable:
            return point, 0.0
        again = _run(micro, arrays)
        if again is None:
            return point.model_copy(update={"peak_bytes": max(int(first[0]), usable + 1)}), 0.0
        return (point.model_copy(update={"peak_bytes": int(max(first[0], again[0])), "seconds": again[1]}),
                2 * max(first[1] - again[1], 0.0))


def _run(micro: Micro, arrays) -> tuple[int, float] | None:
    """Two micro-batches of these arrays as a step runs them (the second queued while the first
    runs, adding to its gradient): (peak bytes, seconds a micro-batch); None when MLX ran out of memory."""
    mx.reset_peak_memory()
    t0 = time.perf_counter()
    try:
        _, _, acc = micro(*arrays, None)
        mx.async_eval(acc)
        out = micro(*arrays, acc)
        mx.async_eval(out)
        mx.eval(acc)
        mx.eval(out)
    except RuntimeError as e:
        if ladder.is_oom_message(str(e)):
            mx.clear_cache()
            return None
        raise
    return mx.get_peak_memory(), (time.perf_counter() - t0) / 2
