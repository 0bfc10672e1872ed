"""report.md: the summary table, the events, the plots and the answers, in Markdown."""

from __future__ import annotations

import time
from pathlib import Path

from farensed.core.atomic import atomic_write_text
from farensed.core.formats import TARGETS
from farensed.memory.plan import count_splits, describe
from farensed.results.answer_scores import means_lines, run_scores, side_by_side
from farensed.results.plots import FILES, PLOTS_DIR, PROBE_FILE, SCORES_FILE, event_steps
from farensed.results.probe_text import probe_text
from farensed.results.rundata import RunData
from farensed.results.summary_table import rows

REPORT = "report.md"
TABLE_ROWS = 50  # answers shown in the page; answers.jsonl has them all


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(data: RunData) -> str:
    lines = [f"# {data.name}", "", f"Run folder: `{data.run_dir}`  ",
             f"Report written {time.strftime('%Y-%m-%d %H:%M')}", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {_cell(v)} |" for k, v in rows(data)]
    lines += ["", "## Events", ""]
    for kind, steps in event_steps(data).items():
        lines.append(f"- {kind}: {', '.join(map(str, steps)) if steps else 'none'}")
    for d in (data.state.downshifts if data.state else []):
        lines.append(f"  - step {d.step}: micro-batch {d.from_micro_batch} -> {d.to_micro_batch}"
                     f" ({d.source}: {d.reason})")
    lines += memory_section(data)
    lines += ["", "## Plots", ""]
    lines += [f"![{name[:-4]}]({PLOTS_DIR}/{name})" for name in FILES]
    lines += _probe_section(data)
    lines += _scores_section(data)
    if data.summary and data.summary.answers:
        lines += ["", "## Answers", ""]
        for a in data.summary.answers:
            lines += [f"**{_cell(a.prompt)}**", "", f"> {_cell(a.answer) or '(empty)'}", ""]
    return "\n".join(lines).rstrip() + "\n"


def _probe_section(data: RunData) -> list[str]:
    """Which probe set is which, the best and the probe's cost, and its plot."""
    text = probe_text(data)
    if not text:
        return []
    chart = [f"![answer probe]({PLOTS_DIR}/{PROBE_FILE})", ""] if data.probes() else []
    return ["", "## Answer probe", "", *(f"    {line}" for line in text.splitlines()), "", *chart]


def _scores_section(data: RunData) -> list[str]:
    """Means, the chart and the answers table (base, best, final side by side) from answers.jsonl."""
    scores = run_scores(data)
    if scores is None:
        return []
    lines = ["", "## Answer scores", "", *(f"    {line}" for line in means_lines(scores)), "",
             f"![answer scores]({PLOTS_DIR}/{SCORES_FILE})", "",
             "| question | reference | " + " | ".join(TARGETS) + " |", "|---|---|" + "---|" * len(TARGETS)]
    rows = sorted(data.answers, key=lambda r: (r.kind != "prompt", r.index))  # the job's prompts first
    lines += ["| " + " | ".join(_cell(c) for c in cells) + " |" for cells in side_by_side(rows[:TABLE_ROWS])]
    if len(rows) > TABLE_ROWS:
        lines += ["", f"({len(rows) - TABLE_ROWS} more in answers.jsonl)"]
    return lines


def memory_section(data: RunData) -> list[str]:
    """The memory plan, the peak against the budget, and how steps were split into micro-batches."""
    st, s = data.state, data.summary
    model = (st.memory_model if st else None) or (s.memory_model if s else None)
    peaks = [r.peak_memory_gb for r in data.trains() if r.peak_memory_gb is not None]
    budget = data.spec.memory.budget_gb if data.spec else 0
    lines = ["", "## Memory", "", f"- plan: {_cell(describe(model)) if model else '-'}"]
    if peaks:
        against = f" against the budget {budget:g} GB ({max(peaks) / budget:.0%})" if budget else " (no budget)"
        lines.append(f"- peak {max(peaks):.3f} GB{against}")
    counts = count_splits(r.splits for r in data.trains())
    if counts:
        lines += ["", "| micro-batches of a step | steps |", "|---|---|"]
        lines += [f"| {name} | {n} |" for name, n in counts.items()]
    return lines


def write_report(data: RunData) -> Path:
    path = data.run_dir / REPORT
    atomic_write_text(path, markdown(data))
    return path
