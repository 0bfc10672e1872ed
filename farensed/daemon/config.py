"""The daemon's settings and their defaults, defined once: `farensed run`'s options take their
defaults from here."""

from __future__ import annotations

import sys
from dataclasses import dataclass


@dataclass
class Config:
    once: bool = False
    settle_seconds: float = 3.0  # a stable file that does not parse is rejected only after this
    stall_seconds: float = 600.0  # restart a worker whose progress files did not change for this long
    stop_grace: float = 15.0  # SIGTERM -> SIGKILL (inside launchd's 20 s ExitTimeOut)
    status_every: float = 2.0
    idle_tick: float = 2.0
    allow_remote_code: bool = False
    sleep_guard: str = "auto"  # caffeinate while a worker runs: auto (macOS) | on | off
    hook: str | None = None  # shell command run when a job ends (FARENSED_JOB_* in its environment)
    pause_on_battery: bool = False
    worker_python: str = sys.executable  # the interpreter that runs `-m farensed.worker`
    metal_relax: bool = True  # AGX_RELAX_CDM_CTXSTORE_TIMEOUT=1 for the worker on macOS (see metal.py)
