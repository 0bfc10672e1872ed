"""One job's problem never ends the daemon (pueue's ok_or_shutdown, without the shutdown).

Every phase of the loop runs under `phase()`: an error that escapes it is logged as
`phase_failed` and the loop goes on. Work on one job runs under `for_job()`: an error there
fails that job with a reason naming what was being done, and nothing else; a full disk
pauses it instead (`farensectl resume` once space is freed).
"""

from __future__ import annotations

import errno
import time
import traceback
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from farensed.daemon.loop import Daemon

REPEAT_LOG_SECONDS = 60.0  # the same failure, every tick, is logged once a minute


class Guard:
    """Remembers when each distinct failure was last logged, so a stuck phase cannot flood the log."""

    def __init__(self, log):
        self.log = log
        self.last_logged: dict[tuple[str, str], float] = {}

    def phase_failed(self, phase: str, error: BaseException, **fields) -> None:
        key, now = (phase, f"{type(error).__name__}: {error}"), time.monotonic()
        if now - self.last_logged.get(key, -REPEAT_LOG_SECONDS) < REPEAT_LOG_SECONDS:
            return
        self.last_logged[key] = now
        where = traceback.extract_tb(error.__traceback__)[-1:]
        self.log.error("phase_failed", phase=phase, error=key[1], **fields,
                       at=f"{where[0].filename}:{where[0].lineno}" if where else None)


@contextmanager
def phase(d: Daemon, name: str, **fields):
    """Run one phase of the loop; whatever escapes it is logged and the loop goes on."""
    try:
        yield
    except Exception as e:  # noqa: BLE001 - the daemon outlives any bug in one phase
        d.guard.phase_failed(name, e, **fields)


@contextmanager
def for_job(d: Daemon, job_id: str, phase_name: str, action: str):
    """Work on one job: an error fails that job with `action: error` as its reason."""
    try:
        yield
    except Exception as e:  # noqa: BLE001 - one job's problem is that job's failure only
        d.guard.phase_failed(phase_name, e, job_id=job_id)
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):  # resumable once space is freed
            d.fail_job(job_id, f"no disk space: {action}: {e}; free some space, then farensectl resume", "paused")
        else:
            d.fail_job(job_id, f"{action}: {e}")
