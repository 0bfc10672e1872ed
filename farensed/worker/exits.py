"""How a worker's run ends: the table from the exceptions that end a run to the state it leaves
(training_state.json's status) and the exit code (core/exitcodes.py) the daemon classifies the end by.

Rows are tried in order; the first that matches decides. An exception in no row is a bug: it
propagates (a traceback and Python's exit 1, EXIT_CRASH).
"""

from __future__ import annotations

import errno
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from farensed.core.errors import DataError, JobFileError
from farensed.core.exitcodes import (
    EXIT_BAD_JOB,
    EXIT_CRASH,
    EXIT_DIVERGED,
    EXIT_NO_SPACE,
    EXIT_OOM_EXHAUSTED,
    EXIT_OOM_RESTART,
    EXIT_PEER_LOST,
    EXIT_STOPPED,
)
from farensed.memory import ladder
from farensed.worker import distributed
from farensed.worker.disk import NoSpace
from farensed.worker.memory import OomExhausted
from farensed.worker.model import BadJob
from farensed.worker.trainer import Diverged, StopRequested


def _first_line(e: BaseException, run_dir: Path) -> str:
    return str(e).splitlines()[0]


def _disk_full(e: BaseException, run) -> bool:
    return e.errno in (errno.ENOSPC, errno.EDQUOT)


def _no_space(e: BaseException, run_dir: Path) -> str:
    return f"{e.filename or run_dir}: no disk space ({e.strerror}); free some space, then farensectl resume"


def _peer_lost(e: BaseException, run) -> bool:
    return run is not None and run.dist.size > 1 and distributed.is_peer_lost(str(e))


@dataclass(frozen=True)
class Exit:
    errors: type | tuple[type, ...]
    status: str  # training_state.json's status: stopped (the job can go on) or failed
    code: int
    when: Callable[[BaseException, object], bool] = lambda e, run: True  # (error, the run or None)
    reason: Callable[[BaseException, Path], str] = lambda e, run_dir: str(e)
    traceback: bool = False  # an unexpected error: its traceback on stderr too


EXITS: tuple[Exit, ...] = (
    Exit(StopRequested, "stopped", EXIT_STOPPED),
    Exit((JobFileError, DataError, BadJob), "failed", EXIT_BAD_JOB),
    Exit(OomExhausted, "failed", EXIT_OOM_EXHAUSTED),
    Exit(Diverged, "failed", EXIT_DIVERGED),
    Exit(NoSpace, "stopped", EXIT_NO_SPACE),
    # the disk filled between checkpoints: pause, not crash
    Exit(OSError, "stopped", EXIT_NO_SPACE, when=_disk_full, reason=_no_space),
    # MLX out of memory outside a step (loading, eval): restart lower
    Exit(RuntimeError, "stopped", EXIT_OOM_RESTART, when=lambda e, run: ladder.is_oom_message(str(e)),
         reason=_first_line),
    Exit(RuntimeError, "stopped", EXIT_PEER_LOST, when=_peer_lost,
         reason=lambda e, run_dir: f"another rank went away: {_first_line(e, run_dir)}"),
    Exit(RuntimeError, "failed", EXIT_CRASH, reason=lambda e, run_dir: f"crash: {e}", traceback=True),
)


def exit_for(e: BaseException, run) -> Exit | None:
    """The first row of EXITS that matches `e` (None: let it propagate)."""
    return next((x for x in EXITS if isinstance(e, x.errors) and x.when(e, run)), None)


def leave(run, log, e: BaseException, how: Exit, run_dir: Path) -> int:
    """Say why the run ends (log, and training_state.json when there is a run); its exit code.
    Called while `e` is being handled (its traceback is printed from there)."""
    if how.traceback:
        traceback.print_exc()
    reason = how.reason(e, run_dir)
    log.warning("worker_exit", status=how.status, reason=reason, exit_code=how.code)
    if run is not None:
        try:
            run.write_state(how.status, reason)
        except Exception:  # the exit code still tells the daemon what happened
            log.exception("state_write_failed")
    return how.code
