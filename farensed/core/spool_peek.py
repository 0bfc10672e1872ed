"""A pydantic-free read of the spool for `farensectl status` while the daemon is down or stale.

The same view `status.build` makes from the models (job records, training_state.json and
progress.json of each run folder), made from plain JSON: importing pydantic and the models
costs more than the whole verb may take. It reads only what the status table shows; when a
file is not what the models would accept at a glance (a torn record, an unknown version), it
answers None and the caller builds the view from the models, which say what is wrong.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from farensed.core.paths import Home
from farensed.core.spool.lock import holder_pid
from farensed.core.status_peek import Fields, is_fresh

QUEUE_SHOWN = 50  # status.QUEUE_SHOWN
RECENT = 10
FINISHED = ("done", "failed", "cancelled", "rejected")  # states.FINISHED
RECORD_KEYS = ("id", "state", "seq", "submitted_at", "since")
VIEW_KEYS = ("id", "name", "state", "priority", "submitted_at", "started_at", "finished_at", "output_dir", "reason",
             "outcome", "restarts")


class NotPlain(Exception):
    """A file the light reader does not vouch for: let the models read it."""


def _json(path: Path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise NotPlain(f"{path}: {e}") from None


def records(jobs_dir: Path) -> list[dict]:
    """Every job record as a dict; NotPlain when one is not a version-1 record of its own id."""
    if not jobs_dir.is_dir():
        return []
    out = []
    for name in sorted(os.listdir(jobs_dir)):
        if name.startswith(".") or not name.endswith(".json"):
            continue
        rec = _json(jobs_dir / name)
        if rec is None:
            continue  # renamed away between the listing and the read
        if (not isinstance(rec, dict) or rec.get("schema_version", 1) != 1 or any(k not in rec for k in RECORD_KEYS)
                or rec["id"] != name[:-5]):
            raise NotPlain(f"{jobs_dir / name}: not a plain job record")
        out.append(rec)
    return out


def _run_file(path: Path) -> dict | None:
    raw = _json(path)
    if raw is not None and (not isinstance(raw, dict) or raw.get("schema_version", 1) != 1):
        raise NotPlain(f"{path}: not a version-1 file")
    return raw


def view(rec: dict, live: bool = False) -> dict:
    """A job view as status.job_view makes it (the fields the table shows)."""
    v = {k: rec.get(k) for k in VIEW_KEYS}
    v["priority"], v["restarts"] = rec.get("priority", 0), rec.get("restarts", 0)
    v["name"] = rec.get("name", "")
    v["worker_pid"] = rec.get("worker_pid") if live else None
    v["progress"] = v["training"] = None
    if not rec.get("output_dir") or rec.get("started_at") is None:
        return v
    run = Path(rec["output_dir"])
    ts, pr = _run_file(run / "training_state.json"), _run_file(run / "progress.json")
    if pr is not None and ts is not None and pr.get("updated_at", 0) < ts.get("updated_at", 0) \
            and pr.get("step", 0) < ts.get("step", 0):
        pr = None  # an older start's figures
    if pr is not None and not live:
        pr = {**pr, "eta_seconds": None}  # no worker: no time left to count down
    v["progress"], v["training"] = pr, ts
    return v


def daemon_info(home: Home) -> dict:
    """The daemon as status reports it without a fresh status.json: not_running, or stale."""
    try:
        st = _json(home.status_file)
    except NotPlain:
        st = None
    d = st.get("daemon") if isinstance(st, dict) and isinstance(st.get("daemon"), dict) else None
    pid = holder_pid(home.lock_file)
    alive = pid is not None
    info = {"pid": (d or {}).get("pid") if d else pid, "heartbeat": (d or {}).get("heartbeat"),
            "started_at": (d or {}).get("started_at"), "state": "not_running"}
    if alive:
        fresh = d is not None and is_fresh(d.get("state", ""), d.get("heartbeat"))
        info["state"] = d["state"] if fresh else "stale"
    return info


def status(home: Home) -> Fields | None:
    """The status view from plain JSON (as status.build makes it), or None: let the models say."""
    try:
        everything = records(home.spool / "jobs")
        recs = [r for r in everything if r.get("kind", "job") == "job"]  # as status.build: sweeps apart
        sweeps = sorted((r for r in everything if r.get("kind") == "sweep" and r["state"] not in FINISHED),
                        key=lambda r: r["seq"])
        daemon = daemon_info(home)
        queue = sorted((r for r in recs if r["state"] == "queued"), key=lambda r: (-r.get("priority", 0), r["seq"]))
        paused = sorted((r for r in recs if r["state"] == "paused"), key=lambda r: r["seq"])
        done = sorted((r for r in everything if r["state"] in FINISHED),
                      key=lambda r: r.get("finished_at") or r["since"], reverse=True)[:RECENT]
        cur = next((r for r in recs if r["state"] == "running"), None)
        return Fields(daemon=daemon, current=view(cur) if cur else None,
                      queue=[view(r) for r in queue[:QUEUE_SHOWN]], queued_total=len(queue),
                      paused=[view(r) for r in paused], recent=[view(r) for r in done],
                      sweeps=[view(r) for r in sweeps], updated_at=time.time())
    except (NotPlain, TypeError, KeyError, AttributeError):
        return None
