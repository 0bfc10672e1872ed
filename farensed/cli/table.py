"""Plain-text rendering of job views for status and list (no rich: the client starts fast)."""

from __future__ import annotations

import shutil
import time
from typing import TYPE_CHECKING

from farensed.core.status_peek import figure
from farensed.core.textfmt import fmt_num, fmt_secs

if TYPE_CHECKING:
    from farensed.core.status import JobView

# step tok/s: the last log window's training speed (progress.json); the summary's "tokens/s overall"
# counts the whole training time, evals and probes in it. mb: the longest steps' micro-batch x accumulation.
COLUMNS = ("id", "state", "phase", "step", "loss", "val", "step tok/s", "mb", "rst", "eta", "note")
PHASES = {"measuring_memory": "measure", "compiling": "compile", "evaluating": "eval", "checkpointing": "ckpt",
          "generating": "generate"}  # the worker's phases in 8 columns (loading, training, probing, scoring, done)
ID_MIN = 8  # an id is cut (…) only to fit the terminal, never below this
NOTE_MIN = 12  # narrower than this, the notes go on lines of their own


def row(v: JobView) -> tuple[str, ...]:
    step, total, micro = figure(v, "step"), figure(v, "total_steps"), figure(v, "micro_batch")
    step = f"{step}/{total}" if total else str(step or "-")
    mb = f"{micro}x{figure(v, 'grad_accumulation')}" if micro else "-"
    note = v.reason or (v.output_dir if v.state == "done" else "") or ""
    loss, val = fmt_num(figure(v, "train_loss"), "{:.3f}"), fmt_num(figure(v, "val_loss"), "{:.3f}")
    running = v.state == "running"
    eta = figure(v, "eta_seconds") if running else None
    phase = (figure(v, "phase") or "-") if running else "-"
    return (v.id, v.state, PHASES.get(phase, phase), step, loss, val,
            fmt_num(figure(v, "tokens_per_sec"), "{:.0f}"), mb, str(v.restarts), fmt_secs(eta, short=True), note)


def _cut(text: str, width: int, keep_end: bool = False) -> str:
    """`text` in `width` columns: a path keeps its end (…/checkpoints/demo), anything else its start."""
    if len(text) <= width:
        return text
    return "…" + text[-(width - 1):] if keep_end else text[:width - 1] + "…"


def jobs_table(views: list[JobView], width: int | None = None) -> str:
    """One line a job in `width` columns (the terminal's, 80 when it is not one): the note (reason or
    output folder) takes what is left, or, when that is too little, a line of its own under its job."""
    width = width or shutil.get_terminal_size((80, 24)).columns
    rows = [COLUMNS] + [row(v) for v in views]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS) - 1)]
    longest = max(NOTE_MIN, *(len(r[-1]) for r in rows))
    sep = 2 if sum(widths) + 2 * len(widths) + longest <= width else 1
    widths[0] = max(ID_MIN, min(widths[0], width - sum(widths[1:]) - sep * (len(widths) - 1)))
    rows = [(_cut(r[0], widths[0]), *r[1:]) for r in rows]
    room = width - sum(widths) - sep * len(widths)
    out = []
    for r in rows:
        cells = [c.ljust(w) for c, w in zip(r, widths)]
        note, is_path = r[-1], r[-1].startswith("/")
        if r is rows[0] and room < NOTE_MIN:
            out.append((" " * sep).join(cells).rstrip())
        elif room >= NOTE_MIN or not note:
            out.append((" " * sep).join(cells + [_cut(note, max(room, 0), is_path)]).rstrip())
        else:
            out += [(" " * sep).join(cells).rstrip(), "  " + _cut(note, width - 2, is_path)]
    return "\n".join(out)


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
