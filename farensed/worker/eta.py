"""A run's time left (progress.json's eta_seconds) and its estimate at the start (training_state's
`estimate`), evals and the final scoring included, from what this run has measured: the last
train row's steps per second, the last eval's loss and probe times, the probe's cost per answer."""

from __future__ import annotations

import time

from farensed.core import job_time
from farensed.core.formats import MetricsRow, PlanEstimate


def _last_eval(rows: list[MetricsRow]) -> MetricsRow | None:
    return next((r for r in reversed(rows) if r.kind == "eval" and r.eval_seconds is not None), None)


def per_answer(run) -> float:
    """Seconds per answered question in the last probe (0 before any)."""
    last = next((r for r in reversed(run.trainer.progress.metrics) if r.probe_seconds is not None), None)
    return last.probe_seconds / run.probe.questions if last and run.probe.questions else 0.0


def eval_seconds(run) -> float:
    last = _last_eval(run.trainer.progress.metrics)
    return (last.eval_seconds or 0.0) + (last.probe_seconds or 0.0) if last else 0.0


def scoring(run) -> float:
    return job_time.scoring_seconds(per_answer(run), run.scored_questions)


def eta(run, steps_per_sec: float | None) -> float | None:
    """Seconds to the end: steps left, evals left, final scoring; None before a step was timed."""
    tr = run.trainer
    if not steps_per_sec:
        return None
    evals = job_time.evals_left(tr.progress.step, tr.total, run.spec.cadence.eval_every, tr.progress.eval_pending)
    return round(job_time.eta_seconds(tr.total - tr.progress.step, 1 / steps_per_sec, evals, eval_seconds(run),
                                      scoring(run)), 1)


def at_start(run, row: MetricsRow) -> PlanEstimate | None:
    """The job's figures as its first timed steps show them (None without a timed step)."""
    tr, last = run.trainer, _last_eval(run.trainer.progress.metrics)
    if not row.steps_per_sec:
        return None
    evals = len(job_time.eval_steps(tr.total, run.spec.cadence.eval_every)) if last else 0
    return PlanEstimate(
        steps_per_epoch=tr.per_epoch, total_steps=tr.total, evals=evals, step_seconds=round(1 / row.steps_per_sec, 4),
        eval_seconds=round(last.eval_seconds or 0.0, 3) if last else 0.0,
        probe_seconds=round(last.probe_seconds or 0.0, 3) if last else 0.0,
        scoring_seconds=round(scoring(run), 1), peak_memory_gb=row.peak_memory_gb or 0.0,
        load_seconds=round(run.state.load_seconds + run.state.compile_seconds, 1), measured_steps=row.step,
        source="worker", at=time.time())
