"""Saved plans: `farensectl plan FILE` keeps its measured figures under <home>/plans, named by the
job file's bytes, so that `status JOB` finds them again for the job submitted from that file (its
run folder holds an exact copy as job.toml)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from farensed.core.atomic import atomic_write_json
from farensed.core.formats import JOB_FILE, PlanEstimate
from farensed.core.paths import Home
from farensed.core.reading import read_or_none

PLANS_DIR = "plans"


def plan_path(home: Home, job_bytes: bytes) -> Path:
    return home.root / PLANS_DIR / f"{hashlib.sha256(job_bytes).hexdigest()[:20]}.json"


def save(home: Home, job_bytes: bytes, estimate: PlanEstimate) -> Path:
    path = plan_path(home, job_bytes)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, estimate)
    return path


def for_run(home: Home, run_dir: Path) -> PlanEstimate | None:
    """The plan measured for the job file this run folder was made from, if `plan` was run on it."""
    try:
        job = (run_dir / JOB_FILE).read_bytes()
    except OSError:
        return None
    return read_or_none(plan_path(home, job), PlanEstimate)
