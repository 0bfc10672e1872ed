"""One worker child process: start it in its own process group, watch it, stop it, reap it."""

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

from .. import blas, metal
from ..formats import PROGRESS, TRAINING_STATE, WORKER_LOG
from .policy import classify

TAIL_BYTES = 64 * 1024


@dataclass
class Worker:
    """A running worker and what the supervisor watches about it."""

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

    @property
    def pid(self) -> int:
        return self.proc.pid


def worker_env(metal_relax: bool = True) -> dict[str, str]:
    """The worker's environment: the fast BLAS (Linux CPU), Metal's relaxed watchdog (macOS)."""
    return metal.relax_env(blas.worker_env(), metal_relax)


def spawn(job_id: str, run_dir: Path, home_root: Path, python: str = sys.executable,
          metal_relax: bool = True) -> Worker:
    """Start `python -m farensed.worker RUN_DIR` in a new session, output appended to worker.log."""
    log_path = run_dir / WORKER_LOG
    with open(log_path, "ab") as out:
        offset = out.tell()
        proc = subprocess.Popen([python, "-m", "farensed.worker", str(run_dir), "--home", str(home_root)],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                env=worker_env(metal_relax), start_new_session=True, cwd=str(home_root))
    try:
        created = psutil.Process(proc.pid).create_time()
    except psutil.Error:
        created = time.time()
    return Worker(job_id, run_dir, proc, created, offset)


def progress_signature(run_dir: Path) -> tuple:
    sig = []
    for name in (PROGRESS, TRAINING_STATE):
        try:
            st = (run_dir / name).stat()
            sig.append((st.st_size, st.st_mtime_ns))
        except FileNotFoundError:
            sig.append(None)
    return tuple(sig)


def progress_phase(run_dir: Path) -> str | None:
    """progress.json's `phase` (loading, compiling, training, ...), read without the model: cheap."""
    try:
        return json.loads((run_dir / PROGRESS).read_text(encoding="utf-8")).get("phase")
    except (OSError, ValueError, AttributeError):
        return None


def watch(w: Worker, now: float) -> None:
    """Note progress-file changes (for the stall watchdog) and the worker's memory share."""
    sig = progress_signature(w.run_dir)
    if sig != w.last_sig:
        w.last_sig, w.last_change = sig, now
        w.phase = progress_phase(w.run_dir)
    try:
        w.memory_share = psutil.Process(w.pid).memory_info().rss / psutil.virtual_memory().total
    except psutil.Error:
        pass


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
    """The policy's reading of this worker's end."""
    return classify(returncode, stderr_tail(w), w.memory_share, w.stalled, w.stop_sent_at is not None)
