"""report.md: the summary table, the events, the plots and the answers, in Markdown."""

from __future__ import annotations

import time
from pathlib import Path

from ..atomic import atomic_write_text
from .plots import FILES, PLOTS_DIR, event_steps
from .rundata import RunData
from .summary_table import rows

REPORT = "report.md"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(data: RunData) -> str:
    lines = [f"# {data.name}", "", f"Run folder: `{data.run_dir}`  ", f"Report written {time.strftime('%Y-%m-%d %H:%M')}",
             "", "| | |", "|---|---|"]
    lines += [f"| {k} | {_cell(v)} |" for k, v in rows(data)]
    lines += ["", "## Events", ""]
    for kind, steps in event_steps(data).items():
        lines.append(f"- {kind}: {', '.join(map(str, steps)) if steps else 'none'}")
    for d in (data.state.downshifts if data.state else []):
        lines.append(f"  - step {d.step}: micro-batch {d.from_micro_batch} -> {d.to_micro_batch} ({d.source}: {d.reason})")
    lines += ["", "## Plots", ""]
    lines += [f"![{name[:-4]}]({PLOTS_DIR}/{name})" for name in FILES]
    if data.summary and data.summary.answers:
        lines += ["", "## Answers", ""]
        for a in data.summary.answers:
            lines += [f"**{_cell(a.prompt)}**", "", f"> {_cell(a.answer) or '(empty)'}", ""]
    return "\n".join(lines).rstrip() + "\n"


def write_report(data: RunData) -> Path:
    path = data.run_dir / REPORT
    atomic_write_text(path, markdown(data))
    return path
