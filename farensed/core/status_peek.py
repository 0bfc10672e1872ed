"""A pydantic-free read of status.json for `farensectl status`, the verb people run most.

status.json is written only by the daemon, from the `Status` model. When it is present,
of the version we know, and the daemon holding the lock wrote it recently, the client
shows it from plain JSON (importing pydantic alone costs more than the 150 ms the verb
may take). Anything else falls back to the full models in `status.py`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

SCHEMA_VERSION = 2  # Status.schema_version
STALE_AFTER = 15.0  # seconds without a heartbeat before the client calls the daemon stale
LIVE_STATES = ("idle", "running", "stopping")


class Fields(dict):
    """A JSON object read as attributes (`v.state`), so the same renderer takes a model or this."""

    def __getattr__(self, name):
        try:
            value = self[name]
        except KeyError:
            raise AttributeError(name) from None
        if isinstance(value, dict):
            return Fields(value)
        if isinstance(value, list):
            return [Fields(x) if isinstance(x, dict) else x for x in value]
        return value


def figure(view, name: str):
    """A run figure of a job's view (a `JobView` or its `Fields`): the live progress's, else the state's."""
    for part in (getattr(view, "progress", None), getattr(view, "training", None)):
        value = getattr(part, name, None) if part is not None else None
        if value is not None:
            return value
    return None


def is_fresh(state: str, heartbeat: float | None, now: float | None = None) -> bool:
    now = time.time() if now is None else now
    return state in LIVE_STATES and now - (heartbeat or 0.0) <= STALE_AFTER


def read_fresh(path: Path, daemon_alive: bool) -> tuple[str, Fields] | None:
    """(text, fields) of status.json when a live daemon wrote it recently; None otherwise."""
    if not daemon_alive:
        return None
    try:
        text = path.read_text(encoding="utf-8")
        raw = json.loads(text)
        daemon = raw["daemon"]
        if raw.get("schema_version") != SCHEMA_VERSION or not is_fresh(daemon["state"], daemon["heartbeat"]):
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return text, Fields(raw)


def daemon_note(st) -> str:
    """One line on the daemon, from a `Status` model or `Fields` of status.json."""
    d = st.daemon
    if d.state == "not_running":
        return "farensed is not running (the spool as it is; requests wait for its start)"
    if d.state == "stale" and d.heartbeat is None:  # status.json missing or torn just now: no heartbeat to age
        return (f"farensed (pid {d.pid or '?'}) holds the lock, but its status.json could not be read just now"
                " (it is rewritten every 2 s); showing the spool as it is")
    if d.state == "stale":
        return f"farensed (pid {d.pid}) holds the lock but its heartbeat is {time.time() - d.heartbeat:.0f}s old"
    line = f"farensed {d.state} (pid {d.pid}, up {time.time() - (d.started_at or time.time()):.0f}s)"
    relax = getattr(d, "metal_relax", None)
    return line + (f"; Metal watchdog: {relax}" if relax and not relax.startswith("not applicable") else "")
