"""The answers to the job's generate prompts and the answer scores (training_summary.json,
answers.jsonl), as `status JOB` shows them."""

from __future__ import annotations

import textwrap
from pathlib import Path

from farensed.core import plans
from farensed.core.formats import SUMMARY, TARGETS, ScoredQuestion, TrainingSummary
from farensed.core.paths import Home
from farensed.core.reading import read_or_none
from farensed.results.answer_scores import answer_cell, means_lines, run_scores
from farensed.results.plan_text import beside_actual
from farensed.results.probe_text import probe_text
from farensed.results.rundata import RunData, load_run


def answers_text(run_dir: Path | str, width: int = 100) -> str:
    """Prompt and answer pairs, indented; "" when the run has no summary or no prompts."""
    summary = read_or_none(Path(run_dir) / SUMMARY, TrainingSummary)
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


def scored_prompts_text(rows: list[ScoredQuestion], width: int = 100) -> str:
    """The job's prompts as the scoring phase answered them: each model's answer with its F1."""
    lines = ["answers to the job's prompts (F1 against the data's answer, when it has the question):"]
    for r in rows:
        lines.append(f"  Q: {r.question}")
        for t in TARGETS:
            if t in r.answers:
                lines += textwrap.wrap(f"{t}: {answer_cell(r, t)}", width, initial_indent="    ",
                                       subsequent_indent="      ")
    return "\n".join(lines)


def scores_text(data: RunData) -> str:
    """The answer scores; while scoring runs, the means of the answers so far."""
    scores = run_scores(data)
    if scores is None:
        return ""
    lines = means_lines(scores)
    if data.summary is None or data.summary.scores is None:
        plan = data.state.scoring
        lines[0] = f"scoring: {len(data.answers)} of {plan.examples + plan.prompts} questions answered so far"
    return "\n".join(lines)


def results_text(run_dir: Path | str, home: Home | None = None, eta: float | None = None) -> str:
    """`status JOB`'s tail: the plan beside the actual figures, the answer probe (which set is
    which, the best), the prompts' answers (every model's, once scored) and the answer scores."""
    if not Path(run_dir).is_dir():  # a queued job's folder does not exist yet
        return ""
    data = load_run(Path(run_dir))
    prompts = [r for r in data.answers if r.kind == "prompt"]
    planned = plans.for_run(home, data.run_dir) if home is not None else None
    parts = [beside_actual(data, planned, eta), probe_text(data),
             scored_prompts_text(prompts) if prompts else answers_text(run_dir), scores_text(data)]
    return "\n".join(p for p in parts if p)
