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
    """One job as status shows it: its record's fields, and its run folder's two live files as they are
    (progress.json while it is newer than training_state.json; the memory model in words)."""

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
    progress: LiveProgress | None = None  # progress.json, when newer than training_state.json
    training: TrainingState | None = None  # training_state.json
    memory_plan: str | None = None  # training.memory_model in words (budget, measured sizes, checkpointing, why)
    kind: Literal["job", "sweep"] = "job"
    sweep: str | None = None  # a trial's sweep

    def figure(self, name: str):
        """A run figure (step, total_steps, train_loss, micro_batch, ...): the live progress's, else the state's."""
        return status_peek.figure(self, name)


class Status(Strict):
    schema_version: Literal[2] = 2  # 2: a job's view holds its progress and training state as they are
    daemon: DaemonInfo
    current: JobView | None = None
    queue: list[JobView] = Field(default_factory=list)  # the first QUEUE_SHOWN, in run order
    queued_total: int = 0
    paused: list[JobView] = Field(default_factory=list)
    recent: list[JobView] = Field(default_factory=list)
    sweeps: list[JobView] = Field(default_factory=list)  # sweeps not finished (their trials are jobs above)
    updated_at: float


def job_view(rec, live: bool = False) -> JobView:
    """A JobView from a JobRecord plus its run folder's training_state.json and progress.json."""
    v = JobView(id=rec.id, name=rec.name, state=rec.state, priority=rec.priority, submitted_at=rec.submitted_at,
                started_at=rec.started_at, finished_at=rec.finished_at, output_dir=rec.output_dir,
                reason=rec.reason, outcome=rec.outcome, restarts=rec.restarts,
                worker_pid=rec.worker_pid if live else None, kind=rec.kind, sweep=rec.sweep)
    if not rec.output_dir or rec.started_at is None:
        return v
    run = Path(rec.output_dir)
    ts, pr = read_or_none(run / TRAINING_STATE, TrainingState), read_or_none(run / PROGRESS, LiveProgress)
    if pr is not None and ts is not None and pr.updated_at < ts.updated_at and pr.step < ts.step:
        pr = None  # an older start's figures
    if pr is not None and not live:
        pr = pr.model_copy(update={"eta_seconds": None})  # no worker: no time left to count down
    ranks = ts.ranks if live and ts and ts.ranks and ts.updated_at >= (rec.worker_started or 0) else None
    plan = memplan.describe(ts.memory_model) if ts and ts.memory_model else None
    return v.model_copy(update={"progress": pr, "training": ts, "ranks": ranks, "memory_plan": plan})


def build(records: dict, daemon: DaemonInfo, running_id: str | None, recent: int = 10) -> Status:
    """The whole status: current job, queue (priority, arrival), paused, recent finished."""
    everything = list(records.values())
    recs = [r for r in everything if r.kind == "job"]
    sweeps = sorted((r for r in everything if r.kind == "sweep" and r.state not in FINISHED), key=lambda r: r.seq)
    done = sorted((r for r in everything if r.state in FINISHED),
                  key=lambda r: r.finished_at or r.since, reverse=True)[:recent]
    queue = sorted((r for r in recs if r.state == "queued"), key=lambda r: (-r.priority, r.seq))
    paused = sorted((r for r in recs if r.state == "paused"), key=lambda r: r.seq)
    cur = next((r for r in recs if r.state == "running"), None)
    return Status(daemon=daemon, current=job_view(cur, live=cur.id == running_id) if cur else None,
                  queue=[job_view(r) for r in queue[:QUEUE_SHOWN]], queued_total=len(queue),
                  paused=[job_view(r) for r in paused], recent=[job_view(r) for r in done],
                  sweeps=[job_view(r) for r in sweeps], updated_at=time.time())


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
