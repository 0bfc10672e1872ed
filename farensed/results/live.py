"""The `watch` view: one frame from the run folder, the job record and the daemon's status.

Gathering is separate from drawing, so a frame can be built and tested without a terminal.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from farensed.core.paths import Home
from farensed.core.states import FINISHED
from farensed.core.status import daemon_state
from farensed.core.textfmt import fmt_num, fmt_secs
from farensed.core.units import GIB
from farensed.memory import plan as memplan
from farensed.results.locate import RunRef, find_record
from farensed.results.rundata import RunData, load_run
from farensed.results.summary_table import mean_micro_batch
from farensed.scoring.best import best_words

ENDED_STATUS = frozenset({"done", "failed"})


@dataclass
class Frame:
    ref: RunRef
    data: RunData
    job_state: str | None  # the record's state; None for a bare run folder
    daemon_note: str | None  # set when the daemon is down or stale
    total_memory_gb: float | None
    at: float

    @property
    def ended(self) -> bool:
        st = self.data.state
        return (self.job_state in FINISHED) or (self.job_state is None and st is not None and st.status in ENDED_STATUS)


def daemon_down_note(home: Home, now: float | None = None) -> str | None:
    """None while the daemon holds its lock with a fresh heartbeat (the rule `status` uses); else why not."""
    st, state = daemon_state(home, now)
    if state == "not_running":
        return "farensed is not running (showing the run folder as the worker left it)"
    if state == "stale":
        beat = f"{(now or time.time()) - st.daemon.heartbeat:.0f}s old" if st and st.daemon.heartbeat else "missing"
        return f"farensed holds the lock but its heartbeat is {beat} (stuck?)"
    return None


def total_memory_gb() -> float | None:
    try:
        import psutil

        return psutil.virtual_memory().total / GIB
    except ImportError:
        return None


def gather(home: Home, ref: RunRef) -> Frame:
    rec = find_record(home, ref.job_id) if ref.record is not None else None
    return Frame(ref=ref, data=load_run(ref.run_dir), job_state=rec.state if rec else None,
                 daemon_note=daemon_down_note(home), total_memory_gb=total_memory_gb(), at=time.time())


def _phase(f: Frame) -> str:
    p, st = f.data.progress, f.data.state
    parts = [f.job_state or "", st.status if st else "", p.phase if p else ""]
    text = " / ".join(dict.fromkeys(x for x in parts if x)) or "no progress yet"  # "done", not "done / done"
    if p and p.phase == "compiling":
        text += " (the first step compiles the training step: slow only the first time on a machine)"
    if st and st.reason:
        text += f" ({st.reason})"
    return text


def _gb(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x * 1024:.1f} MB" if x < 0.1 else f"{x:.2f} GB"


def _memory(f: Frame) -> str:
    p = f.data.progress
    total = f"{f.total_memory_gb:.1f} GB" if f.total_memory_gb else "?"
    if p is None or p.active_memory_gb is None:
        return f"- / {total}"
    text = f"{_gb(p.active_memory_gb)} active, {_gb(p.peak_memory_gb)} peak / {total}"
    return text + (f" (budget {p.budget_gb:g} GB)" if p.budget_gb else "")


def _batch(f: Frame) -> str:
    p, st = f.data.progress, f.data.state
    src = st or p
    if src is None:
        return "-"
    text = f"{src.micro_batch} x {src.grad_accumulation}" + (" + grad checkpointing" if src.grad_checkpoint else "")
    downs = st.downshifts if st else []
    if downs:
        d = downs[-1]
        text += f", {len(downs)} downshift(s), last at step {d.step} ({d.from_micro_batch}->{d.to_micro_batch})"
    return text


def _scoring(f: Frame) -> list[tuple[str, str]]:
    """While scoring: how many questions are answered, and about how long the rest takes."""
    p = f.data.progress
    if p is None or p.phase != "scoring":
        return []
    if not p.to_score:
        return [("Scoring", "timing the first question")]
    left = f", about {fmt_secs(p.eta_seconds)} left" if p.eta_seconds is not None else ""
    return [("Scoring", f"{p.scored or 0}/{p.to_score} questions x base, best, final{left}")]


def _lowest(f: Frame) -> float | None:
    """The lowest validation loss so far (the best adapters' is in Best adapters: they may be chosen by answers)."""
    vals = [r.val_loss for r in f.data.evals()]
    p, st = f.data.progress, f.data.state
    return min(vals) if vals else (p.best_val_loss if p else None) or (st.best_val_loss if st else None)


def _best(f: Frame) -> str:
    """`step 240, probe F1 0.71` (by the job's rule), with the last probe's score while it runs."""
    st, probes = f.data.state, f.data.probes()
    if st is None or st.best_step is None:
        return "-"
    text = best_words(st.best_step, st.best_score, st.best_val_loss, st.probe.select if st.probe else None)
    if probes and probes[-1].step != st.best_step:
        text += f" (last probe, step {probes[-1].step}: F1 {probes[-1].probe_f1:.2f})"
    return text


def lines(f: Frame) -> list[tuple[str, str]]:
    """The frame's fields as (label, text), in the guide's monitor order."""
    p, st = f.data.progress, f.data.state
    restarts = f.ref.record.restarts if f.ref.record else (st.restarts if st else 0)
    age = f"{f.at - p.updated_at:.0f}s ago" if p else "-"
    return [("Phase", _phase(f)), *_scoring(f),
        ("Current loss", fmt_num(p.train_loss if p else None)),
        ("Val loss", fmt_num(p.val_loss if p else None)),
        ("Lowest val loss", fmt_num(_lowest(f))),
        ("Best adapters", _best(f)),
        ("Memory", _memory(f)),
        ("Step tokens/s", fmt_num(p.tokens_per_sec if p else None, "{:.0f}")),
        ("Steps/sec", fmt_num(p.steps_per_sec if p else None, "{:.2f}")),
        ("Mb x acc, longest", _batch(f)),
        ("Micro-batch, mean", fmt_num(mean_micro_batch(f.data), "{:.2f}")),
        ("Last step split", memplan.label(p.split) if p and p.split else "-"),
        ("Memory plan", memplan.describe(st.memory_model) if st and st.memory_model else "-"),
        ("Last checkpoint", (p.last_checkpoint if p else None) or (st.checkpoint if st else None) or "-"),
        ("Restarts", str(restarts)),
        ("Updated", age),
    ]


def progress_numbers(f: Frame) -> tuple[int, int, float | None]:
    """(step, total steps, eta seconds): ETA from the worker, else from steps/s."""
    p, st = f.data.progress, f.data.state
    step = p.step if p else (st.step if st else 0)
    total = (p.total_steps if p else 0) or (st.total_steps if st else 0)
    eta = p.eta_seconds if p else None
    if eta is None and p and p.steps_per_sec and total:
        eta = max(total - step, 0) / p.steps_per_sec
    return step, total, eta


def render(f: Frame):
    """A rich renderable for one frame (panel with the fields, a progress bar and any warning)."""
    from rich.console import Group
    from rich.panel import Panel
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan", justify="right")
    grid.add_column()
    for label, value in lines(f):
        grid.add_row(label, value)
    step, total, eta = progress_numbers(f)
    pct = 100 * step / total if total else 0
    bar = Table.grid(padding=(0, 1))
    bar.add_row(ProgressBar(total=total or 1, completed=min(step, total or 1), width=40),
                Text(f"step {step}/{total or '?'} {pct:5.1f}%  ETA {fmt_secs(eta) if eta is not None else '-'}"))
    parts = [grid, bar]
    if f.daemon_note:
        parts.append(Text(f"daemon down: {f.daemon_note}", style="bold red"))
    if f.ended:
        parts.append(Text(f"job ended: {f.job_state or f.data.state.status}", style="bold green"))
    title = f"{f.data.name} ({f.ref.job_id})  {time.strftime('%H:%M:%S', time.localtime(f.at))}"
    return Panel(Group(*parts), title=title, subtitle=str(f.ref.run_dir), expand=False)
