"""How long a job takes, evals and scoring included (pure): for `farensectl plan`, the worker's
ETA and `status JOB`'s plan-beside-actual.

A job's time is loading, its steps, an eval (validation loss and answer probe) at step 0, every
eval_every steps and at the last step, and the final scoring: every scored question answered by
the base model, the best and the final adapters.
"""

from __future__ import annotations

from farensed.core.formats import TARGETS

SCORED_MODELS = len(TARGETS)  # the final scoring answers every question with base, best and final


def eval_steps(total: int, eval_every: int) -> list[int]:
    """The steps an eval runs at: 0 (the base model, where the curves start), every eval_every, the last."""
    return sorted({0, total, *range(eval_every, total + 1, eval_every)})


def evals_left(step: int, total: int, eval_every: int, pending: bool = False) -> int:
    """Evals still to run after `step` (plus the one at `step` when it is pending)."""
    return sum(s > step for s in eval_steps(total, eval_every)) + int(pending)


def scoring_seconds(per_answer: float, questions: int) -> float:
    """The final scoring's time: each question answered by SCORED_MODELS models at `per_answer` each."""
    return per_answer * questions * SCORED_MODELS


def eta_seconds(steps_left: int, step_seconds: float, evals: int, eval_seconds: float, scoring: float) -> float:
    """Seconds to the end of the job: steps, evals (loss and probe) and the final scoring."""
    return steps_left * step_seconds + evals * eval_seconds + scoring
