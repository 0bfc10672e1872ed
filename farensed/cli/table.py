"""Plain-text rendering of job views for status and list (no rich: the client starts fast)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from farensed.core.status_peek import figure
from farensed.core.textfmt import fmt_num, fmt_secs

if TYPE_CHECKING:
    from farensed.core.status import JobView

COLUMNS = ("id", "state", "step", "loss", "val", "tok/s", "mb x acc", "restarts", "eta", "note")


def row(v: JobView) -> tuple[str, ...]:
    step, total, micro = figure(v, "step"), figure(v, "total_steps"), figure(v, "micro_batch")
    step = f"{step}/{total}" if total else str(step or "-")
    mb = f"{micro}x{figure(v, 'grad_accumulation')}" if micro else "-"
    note = v.reason or (v.output_dir if v.state == "done" else "") or ""
    loss, val = fmt_num(figure(v, "train_loss"), "{:.3f}"), fmt_num(figure(v, "val_loss"), "{:.3f}")
    eta = figure(v, "eta_seconds") if v.state == "running" else None
    return (v.id, v.state, step, loss, val, fmt_num(figure(v, "tokens_per_sec"), "{:.0f}"), mb, str(v.restarts),
            fmt_secs(eta, short=True), note[:70])


def jobs_table(views: list[JobView]) -> str:
    rows = [COLUMNS] + [row(v) for v in views]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


# `status JOB` shows these of the run's figures, live progress first, then the training state's
DETAIL_FIGURES = ("phase", "step", "total_steps", "epoch", "train_loss", "val_loss", "best_val_loss", "best_step",
                  "best_score",
                  "learning_rate", "tokens_per_sec", "steps_per_sec", "active_memory_gb", "peak_memory_gb",
                  "budget_gb", "micro_batch", "grad_accumulation", "grad_checkpoint", "eta_seconds")


def detail_fields(v: JobView) -> dict:
    """The record's fields, then the run's figures and the memory plan, each once."""
    fields = {k: val for k, val in v.model_dump().items() if k not in ("progress", "training", "memory_plan")}
    fields |= {k: figure(v, k) for k in DETAIL_FIGURES}
    if v.state != "running":
        fields["eta_seconds"] = None
    from farensed.memory.plan import label  # status JOB has the full models loaded already

    fields["checkpoint"] = figure(v, "last_checkpoint") or figure(v, "checkpoint")
    split = figure(v, "split")
    fields["split"] = label(split) if split else None
    if v.training is not None:
        fields["downshifts"] = len(v.training.downshifts) or None
    fields["memory_plan"] = v.memory_plan
    return fields


def job_detail(v: JobView) -> str:
    """`status JOB`: one field per line, only the ones that are known."""
    lines = []
    for k, val in detail_fields(v).items():
        if val is None:
            continue
        if k.endswith("_at") and isinstance(val, float):
            val = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(val))
        if k == "ranks":
            val = ", ".join(f"{r['rank']}: {r['host']} pid {r['pid']}" for r in val)
        lines.append(f"{k:>17}: {round(val, 4) if isinstance(val, float) else val}")
    return "\n".join(lines)
