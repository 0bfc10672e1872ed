"""Which adapters are the best, and when to stop looking (pure): the rule of `[evaluate] select`
and `patience`, applied at every eval by the worker (worker.evaluation).

With select = "answers" the best is the highest F1 on the probe's first set (test.jsonl, or
without one the training sample), ties going to the lower validation loss: the validation split
of the user's data holds facts never trained on, so its loss rises while the answers improve.
"""

from __future__ import annotations

from dataclasses import dataclass

from farensed.core.formats import ProbePlan, ProbeSetInfo

PLACES = 4  # F1 means compared as the metrics rows keep them: equal answers are a tie, not float noise

SET_WORDS = {"held_out": "held-out questions", "train": "training questions", "valid": "validation questions"}


@dataclass(frozen=True)
class Standing:
    """The best so far: its probe F1 (None: not by answers) and validation loss."""

    score: float | None
    val_loss: float | None


def improves(select: str, best: Standing, score: float | None, val_loss: float | None) -> bool:
    """Whether an eval with `score` and `val_loss` makes better adapters than `best`."""
    if select == "answers":
        if score is None:
            return False
        if best.score is None or round(score, PLACES) > round(best.score, PLACES):
            return True
        return round(score, PLACES) == round(best.score, PLACES) and _lower(val_loss, best.val_loss)
    return _lower(val_loss, best.val_loss)


def _lower(val: float | None, best: float | None) -> bool:
    return val is not None and (best is None or val < best)


def spent(patience: int, evals_since_best: int) -> bool:
    """[evaluate] patience: that many evals in a row without a better best (0 = never)."""
    return patience > 0 and evals_since_best >= patience


def describe_set(s: ProbeSetInfo) -> str:
    return f"{s.questions} {SET_WORDS[s.name]} ({s.data})"


def rule(select: str, sets: list[ProbeSetInfo], has_valid: bool, patience: int = 0) -> ProbePlan:
    """The rule in force: answers needs a question to ask, val_loss a validation set (without
    either the final adapters are the best, as ever)."""
    if select == "answers" and sets:
        why = f"highest F1 on {describe_set(sets[0])}, ties to the lower validation loss"
    elif has_valid:
        why = "lowest validation loss" + (
            "" if select == "val_loss" else " (no question to ask: [evaluate] probe = 0, or no askable examples)")
        select = "val_loss"
    else:
        why = ("no validation set (select = val_loss)" if select == "val_loss" else
               "no validation set and no question to ask") + ": the final adapters"
        select = "val_loss"
    return ProbePlan(sets=sets, select=select, why=why, patience=patience)


def best_words(step: int | None, score: float | None, val_loss: float | None, select: str | None) -> str:
    """`step 240, probe F1 0.71` (or `step 72, val loss 1.234`), for ask, score, export and plots."""
    if step is None:
        return ""
    if select == "answers" and score is not None:
        return f"step {step}, probe F1 {score:.2f}"
    return f"step {step}, val loss {val_loss:.3f}" if val_loss is not None else f"step {step}"
