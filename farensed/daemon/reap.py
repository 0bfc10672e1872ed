"""reap_worker: keep an eye on the running worker (stall, stop grace) and, once it has exited,
classify its end and settle the job (done, failed, cancelled, paused) or schedule its restart."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from farensed.core.atomic import atomic_write_json
from farensed.core.formats import JOB_FILE, TRAINING_STATE, TrainingState
from farensed.core.jobfile import load_job
from farensed.core.reading import read_or_none
from farensed.core.run_folder import read_training_state
from farensed.core.spool.records import JobRecord
from farensed.daemon import policy, unattended
from farensed.daemon.guard import for_job
from farensed.daemon.worker_process import Worker, ask_stop, classify_worker, kill, observe, release
from farensed.memory import ladder

if TYPE_CHECKING:
    from farensed.daemon.loop import Daemon

SETTLE = {"done": "done", "fail": "failed", "cancel": "cancelled", "pause": "paused", "prune": "done"}


def reap_worker(d: Daemon) -> None:
    """Observe the live worker (stall, stop grace) or, once it has exited, decide what comes next."""
    w = d.worker
    if w is None:
        return
    now = time.monotonic()  # stall and grace timers: sleep of the machine is not a stall
    rc = w.proc.poll()
    if rc is None:
        observe(w, now)
        if w.stop_sent_at is not None and now - w.stop_sent_at > d.cfg.stop_grace:
            d.log.warning("worker_killed", job_id=w.job_id, pid=w.pid, why="did not stop in time")
            kill(w)
        elif w.stop_sent_at is None and policy.stalled(w.last_change, now, d.cfg.stall_seconds, w.phase):
            d.log.warning("worker_stalled", job_id=w.job_id, pid=w.pid, seconds=round(now - w.last_change))
            w.stalled = True
            ask_stop(w, now)
        return
    d.worker = None
    release(w)
    unattended.stop_sleep_guard(w.sleep_guard)
    with for_job(d, w.job_id, "reap_worker", f"{w.run_dir}: settling the worker's end (exit {rc})"):
        settle(d, w, rc)


def settle(d: Daemon, w: Worker, rc: int) -> None:
    rec = d.records[w.job_id]
    outcome = classify_worker(w, rc)
    ts = read_or_none(w.run_dir / TRAINING_STATE, TrainingState)
    decision = policy.decide(outcome, rec.stop_for, rec.crash_restarts, rec.max_restarts, rec.gpu_faults,
                             ts.reason if ts and ts.status in ("failed", "stopped", "done") else None)
    d.log.info("worker_exited", job_id=rec.id, returncode=rc, outcome=outcome.kind, detail=outcome.detail,
               action=decision.action)
    common = {"exit_code": rc, "outcome": outcome.kind, "worker_pid": None, "worker_started": None}
    if d.stopping and decision.action == "restart":
        d.save(rec, **common, reason="daemon stopped; resumes at next start")
    elif decision.action == "restart":
        restart(d, rec, decision, outcome, common)
    else:
        if decision.action == "prune":  # the sweep said why when it asked for the stop
            common["outcome"] = "pruned"
            decision = policy.Decision("prune", rec.reason or decision.reason)
        held = {"battery": "battery"}.get(rec.stop_for, "disk" if outcome.kind == "no_space" else "user")
        d.move(rec, SETTLE[decision.action], decision.reason, stop_for=None,
               paused_by=held if decision.action == "pause" else None, **common)


def restart(d: Daemon, rec: JobRecord, decision: policy.Decision, outcome: policy.Outcome, common: dict) -> None:
    """Schedule the same run again (after a back-off); lower the micro-batch first when memory ran out."""
    run_dir, now = Path(rec.output_dir), time.time()
    state = read_training_state(run_dir, load_job(run_dir / JOB_FILE), d.log)  # a torn one is set aside
    if decision.downshift:
        floor = load_job(run_dir / JOB_FILE).memory.min_micro_batch
        source = "gpu_fault" if outcome.kind == "gpu_fault" else "process_death"
        lower = policy.downshift_state(state, outcome.detail, source, now, floor)
        if lower is None:
            seq = load_job(run_dir / JOB_FILE).training.max_seq_length
            reason = ladder.exhausted_reason(state.effective_batch, seq)
            d.move(rec, "failed", reason, stop_for=None, **common)
            return
        state = lower
        d.log.warning("micro_batch_lowered", job_id=rec.id, micro_batch=state.micro_batch,
                      grad_accumulation=state.grad_accumulation, grad_checkpoint=state.grad_checkpoint)
    count_restart(run_dir, state)
    d.save(rec, **common, stop_for=None, reason=decision.reason, restarts=rec.restarts + 1,
           crash_restarts=rec.crash_restarts + decision.counts_as_crash,
           gpu_faults=rec.gpu_faults + (outcome.kind == "gpu_fault"), not_before=now + decision.delay)
    d.log.info("worker_restart_scheduled", job_id=rec.id, delay=decision.delay, reason=decision.reason)


def count_restart(run_dir: Path, state: TrainingState | None = None) -> None:
    """training_state.json's restart count (the summary reports it) goes up by one."""
    state = state or read_or_none(run_dir / TRAINING_STATE, TrainingState)
    if state is not None:
        atomic_write_json(run_dir / TRAINING_STATE, state.model_copy(update={"restarts": state.restarts + 1}))


def stop_worker(d: Daemon, force: bool = False) -> None:
    """Daemon shutdown: ask the worker to checkpoint (first signal) or kill its group (second)."""
    if d.worker is not None:
        kill(d.worker) if force else ask_stop(d.worker, time.monotonic())
