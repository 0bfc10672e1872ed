"""apply_requests: cancel, pause, resume and retry requests from spool/requests."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from farensed.core.spool import requests
from farensed.core.states import verb_target
from farensed.daemon.worker_process import ask_stop

if TYPE_CHECKING:
    from farensed.daemon.loop import Daemon


def apply_requests(d: Daemon) -> None:
    for path in requests.pending(d.dirs.requests):
        req = requests.read(path, d.log)
        if req is not None:
            apply(d, req)
        requests.done(path)


def apply(d: Daemon, req: requests.Request) -> None:
    rec = d.records.get(req.job)
    if rec is None:
        d.log.warning("request_ignored", verb=req.verb, job_id=req.job, why="unknown job")
        return
    target = verb_target(req.verb, rec.state)
    if target is None:
        d.log.warning("request_ignored", verb=req.verb, job_id=rec.id, why=f"job is {rec.state}")
        return
    d.log.info("request_applied", verb=req.verb, job_id=rec.id, state=rec.state)
    if target == "stop":
        stop_running(d, rec, req.verb)
    elif req.verb == "retry":
        d.move(rec, "queued", f"retry requested after: {rec.reason}", crash_restarts=0, gpu_faults=0,
               finished_at=None, exit_code=None, outcome=None, not_before=None)
    else:
        d.move(rec, target, f"{req.verb} requested")


def stop_running(d: Daemon, rec, verb: str) -> None:
    """A running job stops at a checkpoint; then reap_worker moves it to cancelled or paused."""
    w = d.worker
    if w is not None and w.job_id == rec.id:
        d.save(rec, stop_for=verb)
        ask_stop(w, time.monotonic())
    else:  # waiting to restart (back-off): no worker to stop
        d.move(rec, "cancelled" if verb == "cancel" else "paused", f"{verb} requested", not_before=None)
