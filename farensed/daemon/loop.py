"""The daemon: recover, then loop over named phases until told to stop.

    reap_worker(); sync_records(); apply_requests(); check_power(); scan_spool(); advance_sweeps(); start_next();
    publish_status()

No phase can end the loop: one job's problem fails that job (guard.for_job), any other
error is logged as phase_failed and the next tick tries again (guard.phase).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

from farensed import __version__
from farensed.core.atomic import atomic_write_json
from farensed.core.formats import SUMMARY
from farensed.core.paths import Home
from farensed.core.spool import records
from farensed.core.spool.folders import SpoolDirs, check_spool_permissions
from farensed.core.spool.lock import InstanceLock
from farensed.core.states import BUSY, FINISHED
from farensed.core.status import DaemonInfo, build
from farensed.daemon import spool_events, unattended
from farensed.daemon.config import Config
from farensed.daemon.control import apply_requests
from farensed.daemon.guard import Guard, phase
from farensed.daemon.intake import Stability, scan_spool
from farensed.daemon.power import check_power
from farensed.daemon.reap import reap_worker, stop_worker
from farensed.daemon.record_files import RecordFiles, sync_records
from farensed.daemon.recovery import recover
from farensed.daemon.start import start_next
from farensed.daemon.sweeps import Sweeps, advance_sweeps
from farensed.daemon.transition import admitted, transitioned
from farensed.daemon.worker_process import Worker, kill
from farensed.host import blas, metal

PHASES = (("apply_requests", apply_requests), ("check_power", check_power), ("scan_spool", scan_spool),
          ("advance_sweeps", advance_sweeps), ("start_next", start_next))


class Daemon:
    def __init__(self, home: Home, cfg: Config, log):
        self.home, self.cfg, self.log = home, cfg, log
        self.dirs = SpoolDirs(home.spool)
        self.records: dict[str, records.JobRecord] = {}
        self.stability = Stability()
        self.worker: Worker | None = None
        self.stopping = False
        self.signals = 0
        self.dirty = True
        self.wake = threading.Event()
        self.started_at = time.time()
        self.last_status = 0.0
        self.on_battery = False
        self.blas_in_use = blas.inspect().in_use  # fixed for the daemon's life; not re-probed every publish
        self.guard = Guard(log)
        self.sweeps = Sweeps()  # open Optuna studies (daemon/sweeps.py)
        self.files = RecordFiles(self.dirs, log)  # what did not reach disk is written again each tick
        self.metal_relax = metal.describe(dict(os.environ), cfg.metal_relax)

    # --- record keeping: every change goes through here --------------------------------
    def admit(self, rec: records.JobRecord, recovered: bool = False) -> records.JobRecord:
        self.records[rec.id] = rec = admitted(rec, recovered)
        self.files.write(rec)
        self.log.info("job_transition", job_id=rec.id, old=None, new=rec.state, reason=rec.reason)
        self.dirty = True
        return rec

    def move(self, rec: records.JobRecord, new: str, reason: str | None, **changes) -> records.JobRecord:
        """The one state change: in memory at once (the truth), on disk now or at a later tick."""
        old, rec = rec.state, transitioned(rec, new, reason, **changes)
        self.records[rec.id] = rec
        self.files.write(rec)
        self.log.info("job_transition", job_id=rec.id, old=old, new=new, reason=reason)
        self.dirty = True
        if new in FINISHED:
            summary = Path(rec.output_dir or "") / SUMMARY
            unattended.job_finished(rec, str(summary) if summary.is_file() else None, self.cfg.hook, self.log)
        return rec

    def fail_job(self, job_id: str, reason: str, to: str = "failed") -> None:
        """Fail (or, for a full disk, pause) one job, whatever went wrong with it; never raises."""
        rec = self.records.get(job_id)
        if rec is None or rec.state in FINISHED:
            return
        if self.worker is not None and self.worker.job_id == job_id:  # failed while its worker ran
            kill(self.worker)
            self.worker.proc.wait()
            unattended.stop_sleep_guard(self.worker.sleep_guard)
            self.worker = None
        reset = {"stop_for": None, "worker_pid": None, "worker_started": None, "not_before": None,
                 "paused_by": "disk" if to == "paused" else None}
        try:
            self.move(rec, to, reason, **reset)
        except Exception as e:  # noqa: BLE001 - e.g. its job file is gone: keep the truth in memory
            self.log.error("job_record_not_saved", job_id=job_id, state=to, error=str(e))
            self.records[job_id] = rec = rec.model_copy(update={"state": to, "reason": reason, **reset})
            self.files.unsaved.add(job_id)
            self.dirty = True

    def save(self, rec: records.JobRecord, **changes) -> records.JobRecord:
        self.records[rec.id] = rec = rec.model_copy(update=changes)
        self.files.write(rec)
        self.dirty = True
        return rec

    # --- the loop --------------------------------------------------------------------
    def serve(self) -> int:
        """Hold the lock, recover, then run the loop until stopped; the exit code."""
        lock = InstanceLock(self.home.lock_file)
        lock.acquire()
        observer = None
        try:
            self.dirs.ensure()
            check_spool_permissions(self.dirs, self.home.root)
            self.log.info("daemon_started", pid=os.getpid(), home=str(self.home.root), version=__version__)
            with phase(self, "recover"):
                recover(self)
            observer = spool_events.start([self.dirs.root, self.dirs.requests], self.wake)
            self._install_signals()
            self._loop()
        finally:
            if observer is not None:
                observer.stop()
            with phase(self, "publish_status"):
                self.publish_status(final=True)
            self.log.info("daemon_stopped", pid=os.getpid())
            lock.release()
        return 0

    def _loop(self) -> None:
        while True:
            with phase(self, "reap_worker"):
                reap_worker(self)
            with phase(self, "sync_records"):
                sync_records(self)
            for name, run_phase in PHASES if not self.stopping else ():
                with phase(self, name):
                    run_phase(self)
            with phase(self, "publish_status"):
                self.publish_status()
            if self.stopping and self.worker is None:
                return
            if self.cfg.once and self._idle():
                return
            self.wake.wait(self._tick())
            self.wake.clear()

    def _tick(self) -> float:
        if self.stability.pending:
            return 0.1
        return 0.5 if (self.worker is not None or self.stopping) else self.cfg.idle_tick

    def _idle(self) -> bool:
        return (self.worker is None and not self.stability.pending
                and not any(r.state in BUSY for r in self.records.values()))

    def publish_status(self, final: bool = False) -> None:
        now = time.time()
        if not (self.dirty or final or now - self.last_status >= self.cfg.status_every):
            return
        state = "stopped" if final else "stopping" if self.stopping else "running" if self.worker else "idle"
        guard = self.worker.sleep_guard if self.worker else None
        info = DaemonInfo(pid=os.getpid(), version=__version__, started_at=self.started_at, heartbeat=now,
                          state=state, blas=self.blas_in_use, on_battery=self.on_battery or None,
                          sleep_guard=f"caffeinate -i -w {self.worker.pid}" if guard else None,
                          metal_relax=self.metal_relax)
        running = self.worker.job_id if self.worker else None
        atomic_write_json(self.home.status_file, build(self.records, info, running))
        self.dirty, self.last_status = False, now

    def _install_signals(self) -> None:
        def handler(signum, frame):
            self.signals += 1
            self.stopping = True
            self.log.info("stop_requested", signal=signal.Signals(signum).name, count=self.signals)
            stop_worker(self, force=self.signals > 1)
            self.wake.set()
        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)
