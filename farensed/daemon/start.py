"""start_next: when no worker runs, start the job that should run next, after checking what can
have changed since it was queued (preflight)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from farensed.core.checks import check_job, output_dir
from farensed.core.errors import FarensedError
from farensed.core.formats import JOB_FILE
from farensed.core.jobfile import load_job
from farensed.core.model_source import looks_like_hub_id
from farensed.core.paths import Home
from farensed.core.run_folder import prepare_run
from farensed.core.spool.folders import find_job_file
from farensed.core.states import BUSY
from farensed.daemon import policy, unattended
from farensed.daemon.guard import for_job
from farensed.daemon.intake import outputs_of
from farensed.daemon.worker_process import spawn
from farensed.host.cluster import HostGone

if TYPE_CHECKING:
    from farensed.daemon.loop import Daemon


def start_next(d: Daemon) -> None:
    """If no worker runs, start the job that should run next (a restart holds the slot)."""
    if d.worker is not None or d.stopping or d.on_battery:
        return
    cands = [policy.Candidate(r.id, r.state, r.priority, r.seq, r.not_before) for r in d.records.values()
             if r.state in BUSY and r.kind == "job"]  # a sweep runs no worker: its trials do
    job_id = policy.next_job(cands, time.time())
    if job_id is None:
        return
    rec = d.records[job_id]
    with for_job(d, rec.id, "start_next", f"{rec.output_dir}: cannot start the worker"):
        # where the file is: while its record cannot be written (a full disk) it may lag behind the state
        job_file = find_job_file(d.dirs, rec.id) or d.dirs.job_file(rec.state, rec.id)
        preflight(job_file, d.home, rec.model_local)
        run_copy = Path(rec.output_dir) / JOB_FILE  # what the worker reads; made from the spool's file once
        recheck(d, rec, run_copy if run_copy.exists() else job_file)
        run_dir = prepare_run(job_file, Path(rec.output_dir))
        if rec.state == "queued":
            rec = d.move(rec, "running", None)
        try:
            w = spawn(rec.id, run_dir, d.home.root, d.cfg.worker_python, d.cfg.metal_relax)
        except HostGone as e:  # waiting costs nothing; restarting against a missing host would burn the restarts
            d.log.warning("worker_start_failed", job_id=rec.id, error=str(e))
            d.move(rec, "paused", f"{e}; farensectl resume {rec.id} once it is back", paused_by="host")
            return
        d.worker = w
        w.sleep_guard = unattended.start_sleep_guard(w.pid, d.cfg.sleep_guard, d.log)
        d.save(rec, worker_pid=w.pid, worker_started=w.create_time, not_before=None)
        d.log.info("worker_started", job_id=rec.id, pid=w.pid, run_dir=str(run_dir))


class NoLongerValid(FarensedError):
    """The job file the worker would read fails the checks now (edited after intake, or before a retry)."""


def recheck(d: Daemon, rec, job_file: Path) -> None:
    """Every check of intake, again, on the file the worker will read (the run folder's job.toml, or the
    spool's file it is about to be copied from): a queued file or a run folder's copy edited since
    intake never runs unchecked, and a bad file is never copied into the run folder."""
    rep = check_job(job_file, d.home, check_paths=True, allow_remote_code=d.cfg.allow_remote_code, job_id=rec.id,
                    measure_tokens=False, other_outputs=outputs_of(d))
    if not rep.ok:
        more = f" (and {len(rep.problems) - 1} more)" if len(rep.problems) > 1 else ""
        raise NoLongerValid(f"the job file no longer passes the checks: {rep.problems[0]}{more}")
    out = output_dir(rep.spec, rec.id, d.home).resolve()
    if out != Path(rec.output_dir).resolve():
        raise NoLongerValid(f"{job_file}: output is now {out}, not the folder it was queued with ({rec.output_dir})")


def preflight(job_file: Path, home: Home, model_local: bool | None) -> None:
    """What can have changed since the job was queued: its file, its model and data folders."""
    if not job_file.is_file():
        raise FarensedError(f"{job_file}: the job file was removed from the spool after it was queued")
    spec = load_job(job_file)  # names file:line if it was replaced by something that does not parse
    model = home.resolve(spec.model)
    if not model.exists() and (model_local or not looks_like_hub_id(spec.model, home)):
        raise FarensedError(f"{job_file}: model folder {model} no longer exists")
    if not home.resolve(spec.data).exists():
        raise FarensedError(f"{job_file}: data {home.resolve(spec.data)} no longer exists")
