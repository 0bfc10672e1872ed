"""One worker child process: start it in its own process group, observe it, signal it, read its end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from farensed.core.formats import PROGRESS, TRAINING_STATE, WORKER_LOG, TrainingState
from farensed.core.paths import Home
from farensed.daemon import launch
from farensed.daemon.policy import Outcome, classify, launched_exit
from farensed.host import metal

TAIL_BYTES = 64 * 1024


@dataclass
class Worker:
    """A running worker and what the daemon observes about it."""

    job_id: str
    run_dir: Path
    proc: subprocess.Popen
    create_time: float
    log_offset: int  # worker.log size at start: the tail read after exit is this run's only
    started: float = field(default_factory=time.time)
    last_change: float = field(default_factory=time.monotonic)  # monotonic: the stall watchdog's clock
    last_sig: tuple = ()
    memory_share: float | None = None
    stop_sent_at: float | None = None  # monotonic
    stalled: bool = False
    phase: str | None = None  # progress.json's phase when it last changed (None: not written yet)
    sleep_guard: subprocess.Popen | None = None  # caffeinate -w while this worker runs (macOS)
    ranks: int = 1  # >1: mlx.launch runs the ranks of a data-parallel job
    nudge: int | None = None  # write end of mlx.launch's stdin (see nudge_launcher)

    @property
    def pid(self) -> int:
        return self.proc.pid


def spawn(job_id: str, run_dir: Path, home_root: Path, python: str = sys.executable,
          metal_relax: bool = True) -> Worker:
    """Start `python -m farensed.worker RUN_DIR` (through mlx.launch for a data-parallel job) in a
    new session, output appended to worker.log. HostGone when a host of the job does not answer."""
    p = launch.plan(run_dir, Home(home_root), python, metal.relax_env(dict(os.environ), metal_relax))
    stdin, nudge = os.pipe() if p.launched else (subprocess.DEVNULL, None)
    log_path = run_dir / WORKER_LOG
    try:
        with open(log_path, "ab") as out:
            offset = out.tell()
            proc = subprocess.Popen(p.command, stdin=stdin, stdout=out, stderr=subprocess.STDOUT, env=p.env,
                                    start_new_session=True, cwd=str(home_root))
    except OSError:
        release_fd(nudge)
        raise
    finally:
        if nudge is not None:
            os.close(stdin)
    try:
        created = psutil.Process(proc.pid).create_time()
    except psutil.Error:
        created = time.time()
    return Worker(job_id, run_dir, proc, created, offset, ranks=p.ranks, nudge=nudge)


def release_fd(fd: int | None) -> None:
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass


def release(w: Worker) -> None:
    """After the worker is reaped: close what the daemon held for it."""
    release_fd(w.nudge)
    w.nudge = None


def progress_signature(run_dir: Path) -> tuple:
    sig = []
    for name in (PROGRESS, TRAINING_STATE):
        try:
            st = (run_dir / name).stat()
            sig.append((st.st_size, st.st_mtime_ns))
        except FileNotFoundError:
            sig.append(None)
    return tuple(sig)


def progress_phase(run_dir: Path, since: float = 0.0) -> str | None:
    """progress.json's `phase` (loading, compiling, training, ...), read without the model: cheap.
    None when it was written before `since`: a restarted worker that has not written yet is starting,
    whatever the last one's file says (its "training" would deny the new one the start-up allowance)."""
    try:
        raw = json.loads((run_dir / PROGRESS).read_text(encoding="utf-8"))
        return raw.get("phase") if raw.get("updated_at", 0.0) >= since else None
    except (OSError, ValueError, AttributeError, TypeError):
        return None


def observe(w: Worker, now: float) -> None:
    """Note progress-file changes (for the stall watchdog) and the memory share of the worker
    (with its ranks, for a data-parallel job)."""
    sig = progress_signature(w.run_dir)
    if sig != w.last_sig:
        w.last_sig, w.last_change = sig, now
        w.phase = progress_phase(w.run_dir, since=w.started)
        nudge_launcher(w)
    try:
        proc = psutil.Process(w.pid)
        rss = sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)])
        w.memory_share = rss / psutil.virtual_memory().total
    except psutil.Error:
        pass


def nudge_launcher(w: Worker) -> None:
    """mlx.launch (0.32) polls each rank's stdin pipe, which is always writable, in a busy loop that
    holds most of a core. The ranks close their stdin as they start; one byte through the launcher
    then fails to reach them and it stops polling those pipes. Sent on progress changes: by rank 0's
    first write every rank has started. A byte reaching a rank that still reads stdin is harmless."""
    if w.nudge is not None:
        try:
            os.write(w.nudge, b"\n")
        except OSError:
            release_fd(w.nudge)
            w.nudge = None


def signal_group(pid: int, sig: int) -> bool:
    """Send `sig` to the worker's process group; False if it is already gone."""
    try:
        os.killpg(pid, sig)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return False


def ask_stop(w: Worker, now: float) -> None:
    """First SIGTERM: the worker checkpoints and exits 75."""
    if w.stop_sent_at is None:
        w.stop_sent_at = now
        signal_group(w.pid, signal.SIGTERM)


def kill(w: Worker) -> None:
    signal_group(w.pid, signal.SIGKILL)


def stderr_tail(w: Worker) -> str:
    """The last ~64 KiB this worker wrote to worker.log (only this run's part)."""
    path = w.run_dir / WORKER_LOG
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            start = max(w.log_offset, size - TAIL_BYTES)
            f.seek(start)
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def same_process(pid: int | None, create_time: float | None) -> psutil.Process | None:
    """The process `pid` if it is still the one started at `create_time` (pids get reused)."""
    if not pid or create_time is None:
        return None
    try:
        p = psutil.Process(pid)
        if abs(p.create_time() - create_time) < 0.05 and p.status() != psutil.STATUS_ZOMBIE:
            return p
    except psutil.Error:
        pass
    return None


def stop_orphan(proc: psutil.Process, grace: float, log) -> None:
    """A worker left by a dead daemon: SIGTERM its group, wait for its checkpoint, then SIGKILL."""
    log.warning("orphan_worker_found", pid=proc.pid)
    signal_group(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
        log.info("orphan_worker_stopped", pid=proc.pid, how="sigterm")
    except psutil.TimeoutExpired:
        signal_group(proc.pid, signal.SIGKILL)
        try:
            proc.wait(5)
        except psutil.TimeoutExpired:
            pass
        log.warning("orphan_worker_stopped", pid=proc.pid, how="sigkill")


def classify_worker(w: Worker, returncode: int):
    """The policy's reading of this worker's end (for mlx.launch, of the rank whose end ended the job)."""
    tail, stop_sent = stderr_tail(w), w.stop_sent_at is not None
    if w.ranks == 1:
        return classify(returncode, tail, w.memory_share, w.stalled, stop_sent)
    code, rank = launched_exit(returncode, tail, rank0_done(w.run_dir))
    outcome = classify(code, tail, w.memory_share, w.stalled, stop_sent)
    return outcome if rank is None else Outcome(outcome.kind, f"rank {rank}: {outcome.detail}")


def rank0_done(run_dir: Path) -> bool:
    try:
        return TrainingState.model_validate_json((run_dir / TRAINING_STATE).read_bytes()).status == "done"
    except (OSError, ValueError):
        return False
