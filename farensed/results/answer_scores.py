"""Answer scores as text (no mlx): means per model for status, compare, score and the demo, and
side-by-side rows of answers.jsonl for the report and the demo."""

from __future__ import annotations

from farensed.core.formats import TARGETS, AnswerScores, ScoredQuestion, TargetScore
from farensed.results.rundata import RunData
from farensed.scoring.questions import summarize


def run_scores(data: RunData) -> AnswerScores | None:
    """The summary's scores; while scoring runs, the means of answers.jsonl so far."""
    if data.summary is not None and data.summary.scores is not None:
        return data.summary.scores
    plan = data.state.scoring if data.state else None
    return summarize(data.answers, plan.data, plan.available) if data.answers and plan else None


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def score_cell(s: TargetScore | None) -> str:
    return "-" if s is None else f"F1 {s.f1:.2f}, exact {_pct(s.exact_match)}"


def means_lines(scores: AnswerScores | None) -> list[str]:
    """`held-out: base F1 0.12 (exact 0%) | best ... | final ...`, and the prompts' when scored."""
    if scores is None:
        return []
    out = [f"answer scores on {scores.examples} of {scores.available} held-out questions ({scores.data}),"
           f" {scores.seconds:.1f}s:"]
    for title, means in (("held-out", scores.means), ("job prompts", scores.prompt_means)):
        if means:
            out.append(f"  {title:<11} " + " | ".join(f"{t} {score_cell(means.get(t))}" for t in TARGETS if t in means))
    return out


def figure_rows(scores: AnswerScores | None) -> list[tuple[str, str]]:
    """(label, value) per model for compare's table: F1 and exact match on the held-out questions."""
    means = scores.means if scores else {}
    rows = [(f"answer F1 {t}", f"{means[t].f1:.3f}" if t in means else "-") for t in TARGETS]
    rows += [(f"exact match {t}", _pct(means[t].exact_match) if t in means else "-") for t in TARGETS]
    rows.append(("scored questions", str(scores.examples) if scores else "-"))
    return rows


def answer_cell(row: ScoredQuestion, target: str) -> str:
    """`the answer (F1 0.73)`; without a reference, the answer alone."""
    a = row.answers.get(target)
    if a is None:
        return "-"
    text = a.answer.strip() or "(empty)"
    return text if a.f1 is None else f"{text} (F1 {a.f1:.2f})"


def side_by_side(rows: list[ScoredQuestion], targets=TARGETS) -> list[list[str]]:
    """One list per question: question, reference, then each target's answer with its F1."""
    return [[r.question, r.reference or "-", *(answer_cell(r, t) for t in targets)] for r in rows]
