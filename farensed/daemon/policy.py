"""Supervisor policy, pure: classify a worker's end, decide what next, back-off, pick the next job.

No processes, files or clock here; every input is an argument.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from farensed.core import exitcodes as ec
from farensed.core.formats import Downshift, TrainingState
from farensed.memory import ladder

Kind = Literal["ok", "stopped", "bad_job", "oom", "oom_exhausted", "gpu_fault", "diverged", "no_space",
               "crash", "stall"]
OOM_SIGNALS = (signal.SIGKILL, signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS)
HIGH_MEMORY = 0.9  # share of the machine's memory the worker held just before a SIGKILL


@dataclass(frozen=True)
class Outcome:
    kind: Kind
    detail: str


@dataclass(frozen=True)
class Decision:
    action: Literal["done", "fail", "restart", "pause", "cancel", "prune"]
    reason: str | None = None
    downshift: bool = False
    delay: float = 0.0
    counts_as_crash: bool = False


def signal_name(n: int) -> str:
    try:
        return signal.Signals(n).name
    except ValueError:
        return f"signal {n}"


def classify(returncode: int, stderr_tail: str = "", memory_share: float | None = None,
             stalled: bool = False, stop_sent: bool = False) -> Outcome:
    """What a worker's end means, from its exit code, the tail of its stderr and memory seen."""
    if stalled:
        return Outcome("stall", "no progress: the worker was restarted by the stall watchdog")
    if stop_sent and returncode in (-signal.SIGTERM, 128 + signal.SIGTERM):
        # SIGTERM before the worker installed its handler (still loading): nothing to save yet
        return Outcome("stopped", "stopped by SIGTERM while loading")
    fixed = {ec.EXIT_OK: "ok", ec.EXIT_STOPPED: "stopped", ec.EXIT_BAD_JOB: "bad_job",
             ec.EXIT_OOM_EXHAUSTED: "oom_exhausted", ec.EXIT_OOM_RESTART: "oom", ec.EXIT_DIVERGED: "diverged",
             ec.EXIT_NO_SPACE: "no_space"}
    if returncode in fixed:
        return Outcome(fixed[returncode], ec.NAMES[returncode])
    sig = -returncode if returncode < 0 else None
    if ladder.is_gpu_fault_message(stderr_tail):
        return Outcome("gpu_fault", f"transient GPU fault ({_last_line(stderr_tail, 'kIOGPU')})")
    if sig in OOM_SIGNALS and ladder.is_oom_message(stderr_tail):
        return Outcome("oom", f"out of memory ({signal_name(sig)}): {_last_line(stderr_tail)}")
    if sig == signal.SIGKILL and memory_share is not None and memory_share >= HIGH_MEMORY:
        return Outcome("oom", f"killed (SIGKILL) holding {memory_share:.0%} of memory: out of memory")
    if sig is not None:
        return Outcome("crash", f"terminated unexpectedly ({signal_name(sig)})")
    return Outcome("crash", f"exit code {returncode}: {_last_line(stderr_tail) or 'crash'}")


RANK_END = re.compile(r"Node with rank (\d+) (?:exited with code (-?\d+)|was killed)")
ECHOES = frozenset({ec.EXIT_PEER_LOST, ec.EXIT_STOPPED, -signal.SIGTERM, 128 + signal.SIGTERM})


def launched_exit(returncode: int, tail: str, rank0_done: bool) -> tuple[int, int | None]:
    """(exit code, rank) that ended a job started by mlx.launch, which itself exits 0 whatever its
    ranks did: from its "Node with rank N exited with code C" lines, the first one that is not an
    echo of another rank's end (peer lost, or stopped or killed by the launcher on the way out)."""
    if returncode != 0:  # the launcher itself was killed (stall, stop grace) or refused the command
        return returncode, None
    ends = [(int(r), int(c) if c else -signal.SIGTERM) for r, c in RANK_END.findall(tail)]
    if not ends:
        return (ec.EXIT_OK if rank0_done else ec.EXIT_CRASH), None
    rank, code = next((e for e in ends if e[1] not in ECHOES), ends[0])
    return code, rank


def _last_line(text: str, containing: str = "") -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip() and containing in ln]
    return lines[-1][-300:] if lines else ""


def backoff(attempt: int, base: float = 2.0, factor: float = 2.0, cap: float = 300.0) -> float:
    """Seconds before restart number `attempt` (1-based): base * factor**(attempt-1), capped."""
    return min(cap, base * factor ** max(attempt - 1, 0))


def decide(outcome: Outcome, stop_for: str | None, crash_restarts: int, max_restarts: int,
           gpu_faults: int, worker_reason: str | None = None) -> Decision:
    """The next move after a worker ended (`stop_for`: why we asked it to stop, if we did)."""
    why = worker_reason or outcome.detail
    k = outcome.kind
    if k == "ok":  # a reason says it ended early ([evaluate] patience), with the best step
        return Decision("done", worker_reason)
    if k == "stopped" and stop_for in ("cancel", "pause"):
        return Decision("cancel" if stop_for == "cancel" else "pause", f"{stop_for} requested")
    if k == "stopped" and stop_for == "prune":  # its sweep stopped it at an eval; its checkpoints stay
        return Decision("prune", "pruned by its sweep")
    if k == "stopped" and stop_for == "battery":
        return Decision("pause", "on battery power: paused at a checkpoint, resumes on AC power")
    if k == "stopped":
        return Decision("restart", "stopped by a signal the daemon did not send")
    if k in ("bad_job", "diverged", "oom_exhausted"):
        return Decision("fail", why)
    if k == "no_space":
        why = worker_reason or "the run folder's disk is full (the worker could not even record why)"
        return Decision("pause", f"no disk space: {why}; free some space, then farensectl resume"
                        if "farensectl resume" not in why else f"no disk space: {why}")
    if k == "oom":
        return Decision("restart", outcome.detail, downshift=True)
    if k == "gpu_fault":
        return Decision("restart", outcome.detail, downshift=gpu_faults >= 1)
    if crash_restarts >= max_restarts:
        return Decision("fail", f"{outcome.detail}; gave up after {crash_restarts} restart(s)")
    return Decision("restart", outcome.detail, delay=backoff(crash_restarts + 1), counts_as_crash=True)


def downshift_state(state: TrainingState, reason: str, source: str, now: float,
                    floor: int = 1) -> TrainingState | None:
    """training_state.json one rung lower on the out-of-memory ladder; None when nothing is left."""
    cur = ladder.MemorySetting(state.micro_batch, state.grad_checkpoint)
    nxt = ladder.downshift(cur, floor)
    if nxt is None:
        return None
    d = Downshift(step=state.step, from_micro_batch=cur.micro_batch, to_micro_batch=nxt.micro_batch,
                  grad_checkpoint=nxt.grad_checkpoint, reason=reason, source=source, at=now)
    return state.model_copy(update={
        "micro_batch": nxt.micro_batch, "grad_checkpoint": nxt.grad_checkpoint,
        "grad_accumulation": nxt.accumulation(state.effective_batch), "downshifts": [*state.downshifts, d]})


@dataclass(frozen=True)
class Candidate:
    id: str
    state: str
    priority: int
    seq: int
    not_before: float | None = None


def next_job(jobs: Iterable[Candidate], now: float) -> str | None:
    """A running job waiting to restart holds the slot (even in back-off); else queued by priority, arrival."""
    jobs = list(jobs)
    running = [j for j in jobs if j.state == "running"]
    if running:
        return running[0].id if (running[0].not_before or 0) <= now else None
    queued = sorted((j for j in jobs if j.state == "queued"), key=lambda j: (-j.priority, j.seq))
    return queued[0].id if queued else None


STARTUP_PHASES = ("loading", "measuring_memory", "compiling")  # long and silent: a model load, a first compile
STARTUP_STALL_SECONDS = 1800.0  # a 7B load from a slow disk plus CUDA's first compile fit well inside


def stalled(last_change: float, now: float, stall_seconds: float, phase: str | None = None) -> bool:
    """True when the worker's progress files have not changed for `stall_seconds` (0 = off).
    While it loads or compiles for the first time, nothing can be written: allow STARTUP_STALL_SECONDS."""
    if stall_seconds <= 0:
        return False
    limit = max(stall_seconds, STARTUP_STALL_SECONDS) if phase in STARTUP_PHASES or phase is None else stall_seconds
    return now - last_change > limit
