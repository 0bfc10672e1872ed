"""The answers to the job's generate prompts and the answer scores (training_summary.json,
answers.jsonl), as `status JOB` shows them."""

from __future__ import annotations

import textwrap
from pathlib import Path

from ..formats import SUMMARY, TrainingSummary
from .answer_scores import means_lines, run_scores
from .rundata import load_run, maybe


def answers_text(run_dir: Path | str, width: int = 100) -> str:
    """Prompt and answer pairs, indented; "" when the run has no summary or no prompts."""
    summary = maybe(Path(run_dir) / SUMMARY, TrainingSummary)
    if summary is None or not summary.answers:
        return ""
    lines = ["answers (best adapters):"]
    for a in summary.answers:
        lines.append(f"  Q: {a.prompt}")
        paras = (a.answer.strip() or "(empty answer)").splitlines()
        for i, para in enumerate(paras):
            first = "  A: " if i == 0 else "     "
            lines += textwrap.wrap(para, width, initial_indent=first, subsequent_indent="     ") or [first.rstrip()]
    return "\n".join(lines)


def scores_text(run_dir: Path | str) -> str:
    """The answer scores; while scoring runs, the means of the answers so far."""
    if not Path(run_dir).is_dir():  # a queued job's folder does not exist yet
        return ""
    data = load_run(Path(run_dir))
    scores = run_scores(data)
    if scores is None:
        return ""
    lines = means_lines(scores)
    if data.summary is None or data.summary.scores is None:
        plan = data.state.scoring
        lines[0] = f"scoring: {len(data.answers)} of {plan.examples + plan.prompts} questions answered so far"
    return "\n".join(lines)
