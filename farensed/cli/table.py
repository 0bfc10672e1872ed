"""Plain-text rendering of job views for status and list (no rich: the client starts fast)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from farensed.core.textfmt import fmt_num, fmt_secs

if TYPE_CHECKING:
    from farensed.core.status import JobView

COLUMNS = ("id", "state", "step", "loss", "val", "tok/s", "mb x acc", "restarts", "eta", "note")


def row(v: JobView) -> tuple[str, ...]:
    step = f"{v.step}/{v.total_steps}" if v.total_steps else str(v.step or "-")
    mb = f"{v.micro_batch}x{v.grad_accumulation}" if v.micro_batch else "-"
    note = v.reason or (v.output_dir if v.state == "done" else "") or ""
    loss, val = fmt_num(v.train_loss, "{:.3f}"), fmt_num(v.val_loss, "{:.3f}")
    return (v.id, v.state, step, loss, val, fmt_num(v.tokens_per_sec, "{:.0f}"), mb, str(v.restarts),
            fmt_secs(v.eta_seconds, short=True), note[:70])


def jobs_table(views: list[JobView]) -> str:
    rows = [COLUMNS] + [row(v) for v in views]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def job_detail(v: JobView) -> str:
    """`status JOB`: one field per line, only the ones that are known."""
    lines = []
    for k, val in v.model_dump().items():
        if val is None:
            continue
        if k.endswith("_at") and isinstance(val, float):
            val = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(val))
        if k == "ranks":
            val = ", ".join(f"{r['rank']}: {r['host']} pid {r['pid']}" for r in val)
        lines.append(f"{k:>17}: {round(val, 4) if isinstance(val, float) else val}")
    return "\n".join(lines)
