"""A long-running child process (mlx_lm.server, the export worker) that a Ctrl-C or SIGTERM of the
client ends too: the child runs in its own process group, the client's SIGINT/SIGTERM become
`Stopped`, and `ended` takes the group down (SIGTERM, then SIGKILL after a grace period)."""

from __future__ import annotations

import os
import signal
import subprocess
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
GRACE_SECONDS = 10.0


class Stopped(Exception):
    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # 130 for Ctrl-C, as a shell reports it


@contextmanager
def stop_signals():
    """Inside: SIGINT and SIGTERM raise Stopped in the main thread (the old handlers come back after)."""
    def raise_stopped(signum, _frame):
        raise Stopped(signum)

    old = {s: signal.signal(s, raise_stopped) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def ignore_stop_signals() -> None:
    """While cleaning up after a stop: a second Ctrl-C must not cut the cleanup short."""
    for s in STOP_SIGNALS:
        signal.signal(s, signal.SIG_IGN)


def start(argv: list[str], env: dict, **kw) -> subprocess.Popen:
    """`argv` (never a shell) in a new session, so the terminal's Ctrl-C reaches only the client."""
    return subprocess.Popen(argv, env=env, start_new_session=True, **kw)


def ended(proc: subprocess.Popen, grace: float = GRACE_SECONDS) -> int:
    """Stop the child's whole group (SIGTERM, then SIGKILL) and return its exit status."""
    if proc.poll() is not None:
        return proc.returncode
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        return proc.wait(grace)
    except ProcessLookupError:
        return proc.wait()
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait()
