"""Learning-rate schedule by optimizer step (pure): linear warm-up, then constant or cosine.

The worker trains with it (farensed/worker/schedule.py is this module) and `report` plots it from
step 1, the warm-up included, since it follows from the job file alone."""

from __future__ import annotations

import math

from farensed.core.jobspec import Training


def learning_rate(t: Training, step: int, total_steps: int) -> float:
    """The rate for optimizer update number `step` (1-based): warm-up rises from 0 to the
    base rate over warmup_steps, as in the guide (steps 1-100: 0 -> 2e-4)."""
    base = t.learning_rate
    if t.warmup_steps and step <= t.warmup_steps:
        return base * step / t.warmup_steps
    if t.schedule == "constant":
        return base
    span = max(total_steps - t.warmup_steps, 1)
    progress = min(max(step - t.warmup_steps, 0) / span, 1.0)
    return t.min_learning_rate + 0.5 * (base - t.min_learning_rate) * (1 + math.cos(math.pi * progress))


def total_steps(t: Training, n_train: int) -> int:
    """Steps for the run: epochs x ceil(examples / effective batch), or max_steps."""
    per_epoch = steps_per_epoch(t, n_train)
    return t.max_steps if t.max_steps else per_epoch * t.epochs


def steps_per_epoch(t: Training, n_train: int) -> int:
    return max(1, math.ceil(n_train / t.effective_batch))


def curve(t: Training, total: int) -> tuple[list[int], list[float]]:
    """(steps, rates) from step 0 (rate 0, the warm-up's start) to `total`: the whole schedule."""
    steps = list(range(0, total + 1))
    return steps, [0.0 if s == 0 and t.warmup_steps else learning_rate(t, max(s, 1), total) for s in steps]
