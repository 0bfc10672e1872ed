"""A job's plan in words (farensectl plan) and beside what the run did (status JOB)."""

from __future__ import annotations

from farensed.core.formats import PlanEstimate
from farensed.core.textfmt import fmt_secs
from farensed.results.rundata import RunData

SOURCE = {"plan": "farensectl plan", "worker": "its first steps"}


def secs(x: float) -> str:
    """Seconds to a tenth under a minute (the demo's figures), else 1m05s."""
    return f"{x:.1f}s" if x < 59.95 else fmt_secs(x)


def breakdown(e: PlanEstimate) -> str:
    """`about 1m19s in all: loading 6s + training 58s + 17 evals 12s (probe 5s, 6%) + scoring 3s`."""
    evals = e.evals * (e.eval_seconds + e.probe_seconds)
    probe = e.evals * e.probe_seconds
    share = f", {probe / e.total_seconds:.0%} of the job" if e.total_seconds else ""
    return (f"about {secs(e.total_seconds)} in all: loading and compiling {secs(e.load_seconds)}"
            f" + training {secs(e.training_seconds)} + {e.evals} evals {secs(evals)}"
            f" (answer probe {secs(probe)}{share}) + final scoring {secs(e.scoring_seconds)}")


def plan_lines(e: PlanEstimate, questions: int) -> list[str]:
    """What `farensectl plan` prints under the job's name."""
    return [
        f"  steps: {e.steps_per_epoch} per epoch, {e.total_steps} in all; {e.evals} evals"
        f" (validation loss {e.eval_seconds:.2f}s + answer probe {e.probe_seconds:.2f}s each)",
        f"  measured on this machine ({e.measured_steps} real steps): {e.step_seconds:.3f}s per step,"
        f" peak memory {e.peak_memory_gb:.2f} GB",
        f"  final scoring: {questions} questions x base, best, final, about {secs(e.scoring_seconds)}",
        f"  time: {breakdown(e)}",
    ]


def _peak(data: RunData) -> float | None:
    peaks = [r.peak_memory_gb for r in data.trains() if r.peak_memory_gb is not None]
    return max(peaks) if peaks else None


def actual_line(data: RunData, eta: float | None) -> str:
    """What the run did so far (or in all), in the plan's terms."""
    s, st, last = data.summary, data.state, (data.metrics[-1] if data.metrics else None)
    peak = _peak(data)
    memory = f", peak {peak:.2f} GB" if peak is not None else ""
    if s is not None:
        scoring = f" + scoring {secs(s.scores.seconds)}" if s.scores else ""
        return (f"actual: {s.steps} steps in {secs(s.seconds)} (probe {secs(s.probe_seconds)}){scoring}"
                f" + loading and compiling {secs(s.load_seconds + s.compile_seconds)}{memory}")
    step, total = (st.step, st.total_steps) if st else (last.step if last else 0, 0)
    left = f", about {secs(eta)} left (evals and scoring included)" if eta is not None else ""
    return f"actual: step {step} of {total or '?'} after {secs(last.elapsed if last else 0)}{memory}{left}"


def beside_actual(data: RunData, plan: PlanEstimate | None, eta: float | None) -> str:
    """`status JOB`: the plan (farensectl plan's, else the worker's first steps') over the actual figures."""
    plan = plan or (data.state.estimate if data.state else None)
    if plan is None:
        return ""
    head = (f"plan ({SOURCE[plan.source]}): {plan.total_steps} steps, {breakdown(plan)};"
            f" peak {plan.peak_memory_gb:.2f} GB")
    return head + "\n" + actual_line(data, eta)
