"""status.json: one model, written atomically by the daemon only; read by farensectl.

The same builder turns job records and run folders into job views, so the client shows
the same fields (read-only) when the daemon is down.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

from pydantic import Field

from farensed.core import status_peek
from farensed.core.formats import PROGRESS, TRAINING_STATE, LiveProgress, RankInfo, TrainingState
from farensed.core.paths import Home
from farensed.core.reading import read_or_none
from farensed.core.spool.lock import daemon_alive
from farensed.core.states import FINISHED
from farensed.core.strict import Strict
from farensed.memory import plan as memplan

QUEUE_SHOWN = 50  # status.json is rewritten every 2 s: a long queue is counted, not listed whole


class DaemonInfo(Strict):
    """The daemon writes idle/running/stopping/stopped; the client reports not_running or stale."""

    pid: int | None
    version: str
    started_at: float | None
    heartbeat: float | None
    state: Literal["idle", "running", "stopping", "stopped", "not_running", "stale"]
    blas: str | None = None  # which BLAS the worker runs with (Linux CPU)
    sleep_guard: str | None = None  # the caffeinate keeping the Mac awake for the running worker
    on_battery: bool | None = None
    metal_relax: str | None = None  # whether the worker runs with AGX_RELAX_CDM_CTXSTORE_TIMEOUT (macOS)


class JobView(Strict):
    """One job as status shows it; run-time figures are None until the worker reports them."""

    id: str
    name: str
    state: str
    priority: int = 0
    submitted_at: float
    started_at: float | None = None
    finished_at: float | None = None
    output_dir: str | None = None
    reason: str | None = None
    outcome: str | None = None
    restarts: int = 0
    worker_pid: int | None = None
    ranks: list[RankInfo] | None = None  # a running data-parallel job's processes: rank, host, pid
    phase: str | None = None
    step: int = 0
    total_steps: int | None = None
    epoch: int | None = None
    train_loss: float | None = None
    val_loss: float | None = None
    best_val_loss: float | None = None
    learning_rate: float | None = None
    tokens_per_sec: float | None = None
    steps_per_sec: float | None = None
    memory_gb: float | None = None
    peak_memory_gb: float | None = None
    budget_gb: float | None = None
    micro_batch: int | None = None
    grad_accumulation: int | None = None
    grad_checkpoint: bool | None = None
    downshifts: int = 0
    last_checkpoint: str | None = None
    eta_seconds: float | None = None
    updated_at: float | None = None
    split: str | None = None  # the last step's micro-batches, e.g. "3+3+2"
    memory_plan: str | None = None  # budget, measured model, checkpointing and why


class Status(Strict):
    schema_version: Literal[1] = 1
    daemon: DaemonInfo
    current: JobView | None = None
    queue: list[JobView] = Field(default_factory=list)  # the first QUEUE_SHOWN, in run order
    queued_total: int = 0
    paused: list[JobView] = Field(default_factory=list)
    recent: list[JobView] = Field(default_factory=list)
    updated_at: float


def job_view(rec, live: bool = False) -> JobView:
    """A JobView from a JobRecord plus its run folder's training_state.json and progress.json."""
    v = JobView(id=rec.id, name=rec.name, state=rec.state, priority=rec.priority, submitted_at=rec.submitted_at,
                started_at=rec.started_at, finished_at=rec.finished_at, output_dir=rec.output_dir,
                reason=rec.reason, outcome=rec.outcome, restarts=rec.restarts,
                worker_pid=rec.worker_pid if live else None)
    if not rec.output_dir or rec.started_at is None:
        return v
    run = Path(rec.output_dir)
    ts, pr = read_or_none(run / TRAINING_STATE, TrainingState), read_or_none(run / PROGRESS, LiveProgress)
    upd = {}
    if ts is not None:
        upd |= {"step": ts.step, "total_steps": ts.total_steps or None, "epoch": ts.epoch,
                "best_val_loss": ts.best_val_loss, "micro_batch": ts.micro_batch,
                "grad_accumulation": ts.grad_accumulation, "grad_checkpoint": ts.grad_checkpoint,
                "downshifts": len(ts.downshifts), "last_checkpoint": ts.checkpoint, "updated_at": ts.updated_at,
                "memory_plan": memplan.describe(ts.memory_model) if ts.memory_model else None}
        if live and ts.ranks and ts.updated_at >= (rec.worker_started or 0):  # this start's ranks, not the last's
            upd["ranks"] = ts.ranks
    if pr is not None and (ts is None or pr.updated_at >= ts.updated_at or pr.step >= ts.step):
        upd |= {"step": pr.step, "total_steps": pr.total_steps or upd.get("total_steps"), "epoch": pr.epoch,
                "train_loss": pr.train_loss, "val_loss": pr.val_loss, "best_val_loss": pr.best_val_loss,
                "learning_rate": pr.learning_rate, "tokens_per_sec": pr.tokens_per_sec,
                "steps_per_sec": pr.steps_per_sec, "memory_gb": pr.active_memory_gb,
                "peak_memory_gb": pr.peak_memory_gb, "budget_gb": pr.budget_gb,
                "last_checkpoint": pr.last_checkpoint or upd.get("last_checkpoint"),
                "eta_seconds": pr.eta_seconds if live else None, "phase": pr.phase, "updated_at": pr.updated_at,
                "split": memplan.label(pr.split) if pr.split else None}
        if ts is None:
            upd |= {"micro_batch": pr.micro_batch, "grad_accumulation": pr.grad_accumulation,
                    "grad_checkpoint": pr.grad_checkpoint, "downshifts": pr.downshifts}
    return v.model_copy(update=upd)


def build(records: dict, daemon: DaemonInfo, running_id: str | None, recent: int = 10) -> Status:
    """The whole status: current job, queue (priority, arrival), paused, recent finished."""
    recs = list(records.values())
    queue = sorted((r for r in recs if r.state == "queued"), key=lambda r: (-r.priority, r.seq))
    paused = sorted((r for r in recs if r.state == "paused"), key=lambda r: r.seq)
    done = sorted((r for r in recs if r.state in FINISHED),
                  key=lambda r: r.finished_at or r.since, reverse=True)[:recent]
    cur = next((r for r in recs if r.state == "running"), None)
    return Status(daemon=daemon, current=job_view(cur, live=cur.id == running_id) if cur else None,
                  queue=[job_view(r) for r in queue[:QUEUE_SHOWN]], queued_total=len(queue),
                  paused=[job_view(r) for r in paused], recent=[job_view(r) for r in done], updated_at=time.time())


def read(path: Path) -> Status | None:
    return read_or_none(path, Status)


def is_fresh(st: Status, now: float | None = None) -> bool:
    return status_peek.is_fresh(st.daemon.state, st.daemon.heartbeat, now)


def daemon_state(home: Home, now: float | None = None) -> tuple[Status | None, str]:
    """status.json (None when missing or unreadable) and where the daemon stands: "up" (it holds the
    lock and its heartbeat is fresh), "stale" (it holds the lock, the heartbeat is old) or "not_running"."""
    st = read(home.status_file)
    if not daemon_alive(home):
        return st, "not_running"
    return st, "up" if st is not None and is_fresh(st, now) else "stale"
