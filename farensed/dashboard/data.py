"""Everything the dashboard shows, read from the home as plain JSON-able dicts: the one module that
knows where the data lives (status.json, spool/jobs, run folders), so a change of format is
adapted here and nowhere in the pages.

Each payload is cached under a signature of the files it was built from (their stat keys): a page
polling every 2 s costs a few stat calls until something changes, and the signature is the ETag.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from farensed.core import status_peek
from farensed.core.formats import (
    ANSWERS,
    JOB_FILE,
    METRICS_JSON,
    METRICS_JSONL,
    PROGRESS,
    SUMMARY,
    TRAINING_STATE,
    WORKER_LOG,
)
from farensed.core.paths import Home
from farensed.core.spool.folders import SpoolDirs, find_job_file
from farensed.core.spool.lock import daemon_alive
from farensed.core.spool.records import JobRecord
from farensed.core.states import FINISHED, VERBS, verb_target
from farensed.core.status import job_view
from farensed.dashboard import filecache, logview
from farensed.dashboard.filecache import stat_key

RUN_FILES = (TRAINING_STATE, PROGRESS, METRICS_JSONL, METRICS_JSON, SUMMARY, ANSWERS, WORKER_LOG, JOB_FILE)
# the run figures a page shows (status_peek.figure: progress.json's, else training_state.json's)
FIGURES = ("phase", "step", "total_steps", "epoch", "train_loss", "val_loss", "best_val_loss", "best_step",
           "learning_rate", "tokens_per_sec", "steps_per_sec", "active_memory_gb", "peak_memory_gb", "budget_gb",
           "micro_batch", "grad_accumulation", "grad_checkpoint", "eta_seconds", "last_checkpoint")
SWEEP_KEYS = ("sweep_id", "sweep")  # where a trial names its sweep: its record, or its job file's [trial]
_payloads: dict[str, tuple[tuple, dict]] = {}


def etag(signature: tuple) -> str:
    return hashlib.blake2b(repr(signature).encode(), digest_size=12).hexdigest()


def _memo(name: str, signature: tuple, build) -> tuple[dict, str]:
    """The payload `name` for this signature: built again only when the signature moved."""
    hit = _payloads.get(name)
    if hit is None or hit[0] != signature:
        hit = (signature, build())
        _payloads[name] = hit
    return hit[1], etag(signature)


# --- job records -------------------------------------------------------------------------
def _parse_record(path: Path) -> tuple[JobRecord, dict]:
    """The record, and the fields this version does not know (another branch's, e.g. a sweep id)."""
    raw = filecache.json_file(path) or {}
    known = {k: v for k, v in raw.items() if k in JobRecord.model_fields}
    return JobRecord.model_validate(known), {k: v for k, v in raw.items() if k not in known}


def record_files(home: Home) -> list[Path]:
    jobs = SpoolDirs(home.spool).jobs
    try:
        return sorted(Path(e.path) for e in os.scandir(jobs) if e.name.endswith(".json") and not e.name.startswith("."))
    except FileNotFoundError:
        return []


def record(path: Path) -> tuple[JobRecord, dict] | None:
    try:
        return filecache.cached(path, "record", _parse_record)
    except ValueError:  # pydantic's ValidationError is a ValueError: an unreadable record is left out
        return None


def job_settings(home: Home, rec: JobRecord) -> dict:
    """The job file as TOML (tolerant: sections of a newer version are kept, not refused)."""
    run = Path(rec.output_dir) if rec.output_dir else None
    path = run / JOB_FILE if run is not None and (run / JOB_FILE).is_file() else find_job_file(
        SpoolDirs(home.spool), rec.id)
    return (filecache.toml_file(path) if path else None) or {}


def sweep_of(extras: dict, settings: dict) -> str | None:
    """The sweep a job is a trial of: a record field or the job file's [trial] table; None if none."""
    for source in (extras, settings.get("trial") or {}, settings):
        for key in SWEEP_KEYS:
            v = source.get(key) if isinstance(source, dict) else None
            if isinstance(v, dict):
                v = v.get("id")
            if isinstance(v, str) and v:
                return v
    return None


# --- the daemon ----------------------------------------------------------------------------
def daemon(home: Home) -> dict:
    """Where the daemon stands, its heartbeat, sleep guard and battery (status.json, else the lock)."""
    raw = filecache.json_file(home.status_file) or {}
    d = dict(raw.get("daemon") or {})
    alive = daemon_alive(home)
    if not alive:
        d["state"] = "not_running"
    elif not status_peek.is_fresh(d.get("state", ""), d.get("heartbeat")):
        d["state"] = "stale"
    d.setdefault("pid", None)
    d.setdefault("heartbeat", None)
    d.setdefault("started_at", None)
    d["note"] = status_peek.daemon_note(status_peek.Fields({"daemon": d}))
    d["heartbeat_age"] = round(time.time() - d["heartbeat"], 1) if d.get("heartbeat") else None
    if d.get("on_battery") is None:
        d["on_battery"] = _on_battery()
    current = (raw.get("current") or {}).get("id") if d["state"] not in ("not_running", "stale") else None
    return d | {"running_id": current}


def _on_battery() -> bool | None:
    try:
        import psutil

        b = psutil.sensors_battery()
    except (ImportError, OSError, RuntimeError):
        return None
    return None if b is None else not b.power_plugged


# --- the queue -----------------------------------------------------------------------------
def _order(v: dict) -> tuple:
    """Running first, then queued in run order (priority, arrival), paused, finished newest first."""
    rank = {"running": 0, "queued": 1, "paused": 2}.get(v["state"], 3)
    if rank == 1:
        return rank, -v["priority"], v["seq"]
    if rank == 3:
        return rank, -(v["finished_at"] or v["submitted_at"]), 0
    return rank, v["seq"], 0


def view(home: Home, rec: JobRecord, extras: dict, live: bool) -> dict:
    """One job as the pages show it, flat: status's JobView (the record's fields and the run's figures,
    live progress first), its sweep, and the verbs its state takes."""
    jv = job_view(rec, live=live)
    v = jv.model_dump(exclude={"progress", "training", "ranks"})
    v |= {k: status_peek.figure(jv, k) for k in FIGURES}
    v["eta_seconds"] = v["eta_seconds"] if rec.state == "running" else None
    v["downshifts"] = len(jv.training.downshifts) if jv.training else 0
    v["sweep"] = rec.sweep or sweep_of(extras, job_settings(home, rec))
    v["verbs"] = [verb for verb in VERBS if verb_target(verb, rec.state) is not None]
    v["finished"] = rec.state in FINISHED
    v["seq"] = rec.seq
    return v


def _run_stats(rec: JobRecord) -> tuple:
    if not rec.output_dir:
        return ()
    run = Path(rec.output_dir)
    return stat_key(run / TRAINING_STATE), stat_key(run / PROGRESS), stat_key(run / JOB_FILE)


def _cached_view(home: Home, path: Path, running_id: str | None) -> tuple[tuple, dict] | None:
    """(signature, view) of one record file; the view is rebuilt only when one of its files moved."""
    found = record(path)
    if found is None:
        return None
    rec, extras = found
    live = rec.id == running_id
    sig = (stat_key(path), _run_stats(rec), live)
    return sig, _memo(f"view:{rec.id}", sig, lambda: view(home, rec, extras, live))[0]


def queue(home: Home) -> tuple[dict, str]:
    """Every job (running, queued in run order, paused, finished newest first) and the daemon."""
    d = daemon(home)
    views = [v for p in record_files(home) if (v := _cached_view(home, p, d["running_id"])) is not None]
    jobs = sorted((v for _, v in views), key=_order)
    counts: dict[str, int] = {}
    for j in jobs:
        counts[j["state"]] = counts.get(j["state"], 0) + 1
    sweeps = sorted({j["sweep"] for j in jobs if j["sweep"]})
    payload = {"daemon": d, "jobs": jobs, "counts": counts, "sweeps": sweeps, "updated_at": time.time()}
    return payload, etag((d["state"], d.get("heartbeat"), d["running_id"], tuple(s for s, _ in views)))


def find(home: Home, job_id: str) -> tuple[JobRecord, dict] | None:
    path = SpoolDirs(home.spool).jobs / f"{job_id}.json"
    return record(path) if "/" not in job_id and not job_id.startswith(".") else None


def run_signature(home: Home, job_id: str) -> tuple | None:
    """The stat keys of everything a job page shows: its record and its run folder's files."""
    found = find(home, job_id)
    if found is None:
        return None
    rec = found[0]
    run = Path(rec.output_dir) if rec.output_dir else None
    files = tuple(stat_key(run / f) for f in RUN_FILES) + (stat_key(run),) if run else ()
    return (stat_key(SpoolDirs(home.spool).jobs / f"{job_id}.json"), files, daemon(home)["running_id"] == job_id)


def job(home: Home, job_id: str) -> tuple[dict, str] | None:
    """One job's whole page: its view, curves, checkpoints, settings, answers and log tail."""
    from farensed.dashboard import runpage  # the run-folder readers: only for job pages

    sig = run_signature(home, job_id)
    if sig is None:
        return None
    rec, extras = find(home, job_id)
    return _memo(f"job:{job_id}", sig, lambda: runpage.page(home, rec, view(home, rec, extras, live=sig[2])))


def log_lines(run_dir: Path, count: int = 60) -> list[dict]:
    return [logview.readable(line) for line in filecache.log_tail(run_dir / WORKER_LOG)[-count:]]
