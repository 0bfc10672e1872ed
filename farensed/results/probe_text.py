"""The answer probe in words (status JOB, the report): which question set is which, the last
scores, the best and why, the probe's cost, an early stop."""

from __future__ import annotations

from farensed.core.formats import ProbePlan, ProbeSetInfo
from farensed.results.plan_text import secs
from farensed.results.rundata import RunData
from farensed.scoring.best import best_words, describe_set

MEANING = {
    "held_out": "held-out rewordings of trained facts",
    "train": "did it learn the facts?",
    "valid": "does it carry over to facts it never saw?",
}


def plan_of(data: RunData) -> ProbePlan | None:
    return (data.state.probe if data.state else None) or (data.summary.probe if data.summary else None)


def set_line(s: ProbeSetInfo, first: bool, select: str) -> str:
    role = " - decides the best" if first and select == "answers" else ""
    return f"  {s.field + '_f1':<15} {describe_set(s)}: {MEANING[s.name]}{role}"


def last_scores(data: RunData) -> str | None:
    probes = data.probes()
    if not probes:
        return None
    r = probes[-1]
    text = f"  last probe (step {r.step}): F1 {r.probe_f1:.2f}, exact {100 * (r.probe_exact or 0):.0f}%"
    if r.probe_valid_f1 is not None:
        text += f" | validation F1 {r.probe_valid_f1:.2f}, exact {100 * (r.probe_valid_exact or 0):.0f}%"
    return text


def cost_line(data: RunData) -> str | None:
    """All the probes' time against the job's training time (the issue's target: under ~10%)."""
    seconds = [r.probe_seconds for r in data.probes() if r.probe_seconds is not None]
    if not seconds:
        return None
    train = data.summary.seconds if data.summary else (data.metrics[-1].elapsed if data.metrics else 0.0)
    share = f", {sum(seconds) / train:.0%} of the training time" if train else ""
    return f"  cost: {len(seconds)} probes, {secs(sum(seconds))} in all (last {seconds[-1]:.2f}s){share}"


def probe_text(data: RunData) -> str:
    """The probe section; "" for a run without one."""
    plan = plan_of(data)
    if plan is None or not plan.sets:
        return f"best adapters: {plan.why}" if plan else ""
    lines = [f"answer probe at every eval; best = {plan.why}:"]
    lines += [set_line(s, i == 0, plan.select) for i, s in enumerate(plan.sets)]
    lines += [x for x in (last_scores(data), _best_line(data, plan), cost_line(data)) if x]
    if plan.patience:
        lines.append(f"  patience: {plan.patience} evals without a better best end the job")
    st = data.state
    if st and st.status == "done" and st.reason:
        lines.append(f"  {st.reason}")
    return "\n".join(lines)


def _best_line(data: RunData, plan: ProbePlan) -> str | None:
    st = data.state
    if st is None or st.best_step is None:
        return None
    return f"  best adapters: {best_words(st.best_step, st.best_score, st.best_val_loss, plan.select)}"
