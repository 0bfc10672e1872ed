"""A job's states, the moves between them and what each control verb does, in one place.

The daemon's transition function (daemon/transition.py) refuses any move not listed in MOVES; the
client (farensectl pause/resume/cancel/retry) checks VERBS before it writes a request, and the daemon
applies the same table when the request arrives.
"""

from __future__ import annotations

from typing import Literal

JobState = Literal["queued", "running", "paused", "done", "failed", "cancelled", "rejected"]
STATES: tuple[JobState, ...] = ("queued", "running", "paused", "done", "failed", "cancelled", "rejected")
FINISHED: frozenset[str] = frozenset({"done", "failed", "cancelled", "rejected"})  # never runs again by itself
BUSY: frozenset[str] = frozenset({"queued", "running"})  # waiting for the worker or in it
StopFor = Literal["cancel", "pause", "battery", "prune"]  # why a running worker was asked to stop (prune: its sweep)

# state -> the states it may move to; None is a job not yet recorded
MOVES: dict[str | None, frozenset[str]] = {
    None: frozenset({"queued", "rejected"}),
    # any job that is not finished can fail: its file vanished, its output folder cannot be written...
    "queued": frozenset({"running", "paused", "cancelled", "failed"}),
    "running": frozenset({"done", "failed", "cancelled", "paused"}),
    "paused": frozenset({"queued", "cancelled", "failed"}),
    "failed": frozenset({"queued"}),
    "cancelled": frozenset({"queued"}),
    "done": frozenset(),
    "rejected": frozenset(),
}

Verb = Literal["cancel", "pause", "resume", "retry"]
# verb -> {state the job is in: state it goes to}; "stop" means: ask the running worker first
VERBS: dict[str, dict[str, str]] = {
    "cancel": {"queued": "cancelled", "paused": "cancelled", "running": "stop"},
    "pause": {"queued": "paused", "running": "stop"},
    "resume": {"paused": "queued"},
    "retry": {"failed": "queued", "cancelled": "queued"},
}


def can_move(old: str | None, new: str) -> bool:
    """Whether a job in state `old` may go to `new`."""
    return new in MOVES.get(old, frozenset())


def verb_target(verb: str, state: str) -> str | None:
    """What `verb` does to a job in `state`: its new state, "stop", or None when it does not apply."""
    return VERBS[verb].get(state)
