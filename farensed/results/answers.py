"""The answers to the job's generate prompts (training_summary.json), as `status JOB` shows them."""

from __future__ import annotations

import textwrap
from pathlib import Path

from ..formats import SUMMARY, TrainingSummary
from .rundata import maybe


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
