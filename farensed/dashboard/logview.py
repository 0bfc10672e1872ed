"""worker.log lines in readable form: `12:27:57 info checkpoint_saved step=8 seconds=0.008`.

The worker logs JSON lines (structlog); anything else in the file (a traceback, MLX's own stderr)
is shown as it is. The page puts the text in with textContent: nothing here is ever markup.
"""

from __future__ import annotations

import json
from datetime import datetime

HIDDEN = frozenset({"event", "level", "timestamp", "run_dir", "job", "logger"})  # shown apart, or on every line
MAX_LINE = 2000


def _when(ts: object) -> str:
    """The local time of day of structlog's UTC ISO timestamp: "2026-12-02T12:27:57.97Z" -> "12:27:57"."""
    if not isinstance(ts, str):
        return ""
    try:
        return datetime.fromisoformat(ts).astimezone().strftime("%H:%M:%S")
    except ValueError:
        return ""


def _value(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False)
    return str(v)


def readable(line: str) -> dict:
    """{"time", "level", "event", "text"} for one log line; a plain line keeps its text whole."""
    line = line[:MAX_LINE]
    try:
        ev = json.loads(line)
    except ValueError:
        ev = None
    if not isinstance(ev, dict) or "event" not in ev:
        return {"time": "", "level": "", "event": "", "text": line}
    fields = " ".join(f"{k}={_value(v)}" for k, v in ev.items() if k not in HIDDEN and v is not None)
    return {"time": _when(ev.get("timestamp")), "level": str(ev.get("level", "")), "event": str(ev["event"]),
            "text": fields}
