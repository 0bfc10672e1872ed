"""scan_spool: judge dropped files once they are stable, then claim (queued) or reject them."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from farensed.core.checks import check_job, output_dir
from farensed.core.errors import FarensedError, JobFileError
from farensed.core.jobfile import data_file_hint, load_job
from farensed.core.spool.folders import dropped_files, ignored, move, ownership_problem, reject
from farensed.core.spool.records import JobRecord, id_base, kind_of, taken_ids, unique_id

if TYPE_CHECKING:
    from farensed.daemon.loop import Daemon


@dataclass
class Stability:
    """A file is stable once its size and mtime are unchanged across two scans some time apart."""

    min_interval: float = 0.2
    seen: dict[str, tuple[int, int, float]] = field(default_factory=dict)

    def check(self, path: Path, now: float) -> bool:
        try:
            st = path.stat()
        except FileNotFoundError:
            self.seen.pop(path.name, None)
            return False
        sig = (st.st_size, st.st_mtime_ns)
        prev = self.seen.get(path.name)
        if prev is None or prev[:2] != sig:
            self.seen[path.name] = (*sig, now)
            return False
        return now - prev[2] >= self.min_interval

    def forget(self, name: str) -> None:
        self.seen.pop(name, None)

    @property
    def pending(self) -> bool:
        return bool(self.seen)


def age_seconds(path: Path) -> float:
    """Seconds since the file was last modified."""
    return time.time() - path.stat().st_mtime


def scan_spool(d: Daemon) -> None:
    """Look at every dropped *.toml; judge the ones whose size and mtime have settled."""
    now = time.monotonic()
    for path in dropped_files(d.dirs.root):
        if not path.is_file() or path.is_symlink() or d.stability.check(path, now):
            try:
                judge(d, path)
            except FileNotFoundError:
                d.stability.forget(path.name)  # taken away while we looked
            except Exception as e:  # noqa: BLE001 - one file's problem never stops intake of the next
                d.log.error("spool_file_not_claimed", file=str(path), error=f"{type(e).__name__}: {e}")
                reject_unjudged(d, path, e)
    for path in dropped_data(d.dirs.root):
        if d.stability.check(path, now):
            try:
                reject_data(d, path)
            except FileNotFoundError:
                d.stability.forget(path.name)
            except (OSError, FarensedError) as e:
                d.log.error("spool_file_not_rejected", file=str(path), error=str(e))


def dropped_data(root: Path) -> list[Path]:
    """Data files (*.jsonl, regular) dropped into the spool beside the job files: never silently left."""
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except FileNotFoundError:
        return []
    return [Path(e.path) for e in entries
            if e.name.endswith(".jsonl") and not ignored(e.name) and e.is_file(follow_symlinks=False)]


def reject_data(d: Daemon, path: Path) -> None:
    """A data file in the spool is rejected as a job (its bytes kept, rejected/<id>.toml), with the reason
    saying what it is and how a job points at it; the daemon logs it."""
    job_id = unique_id(id_base(path.name), taken_ids(d.records, d.home.checkpoints))
    reason = f"{path}: {data_file_hint(str(path))}; drop job files (.toml) into the spool, data files elsewhere"
    d.log.warning("spool_data_file_rejected", file=str(path), job_id=job_id)
    reject(path, d.dirs.job_file("rejected", job_id), [reason])
    d.stability.forget(path.name)
    now = time.time()
    d.admit(JobRecord(id=job_id, file_name=path.name, state="rejected", since=now, seq=_next_seq(d),
                      submitted_at=now, max_restarts=0, reason=reason))


def reject_unjudged(d: Daemon, path: Path, error: Exception) -> None:
    """A file whose judging raised is rejected with the reason, so it cannot jam the intake;
    if even that fails (the spool unwritable), it is logged and tried again on the next scan."""
    try:
        job_id = unique_id(id_base(path.name), taken_ids(d.records, d.home.checkpoints))
        reason = f"{path}: could not be judged: {type(error).__name__}: {str(error)[:300]}"
        reject(path, d.dirs.job_file("rejected", job_id), [reason])
        d.stability.forget(path.name)
        now = time.time()
        d.admit(JobRecord(id=job_id, file_name=path.name, state="rejected", since=now, seq=_next_seq(d),
                          submitted_at=now, max_restarts=0, reason=reason))
    except (OSError, FarensedError) as e:
        d.log.error("spool_file_not_rejected", file=str(path), error=str(e))


def _parses(path: Path) -> bool:
    try:
        load_job(path)
        return True
    except JobFileError:
        return False


def judge(d: Daemon, path: Path) -> None:
    """A stable file: wait while it does not parse (still being written?), else queue or reject it.
    Symlinks and files of other users are rejected unread."""
    refused = ownership_problem(path, os.lstat(path), os.getuid())
    if refused is None and not _parses(path) and age_seconds(path) < d.cfg.settle_seconds:
        return
    job_id = unique_id(id_base(path.name), taken_ids(d.records, d.home.checkpoints))
    spec, problems = (None, [refused]) if refused else _check(d, path, job_id)
    out = str(output_dir(spec, job_id, d.home)) if spec and spec.sweep is None else None  # trials have folders
    now = time.time()
    rec = JobRecord(id=job_id, file_name=path.name, name=spec.name if spec else "",
                    state="rejected" if problems else "queued", since=now, seq=_next_seq(d),
                    priority=spec.priority if spec else 0, submitted_at=now, output_dir=None if problems else out,
                    max_restarts=spec.max_restarts if spec else 0, reason=problems[0] if problems else None,
                    model_local=d.home.resolve(spec.model).is_dir() if spec else None, kind=kind_of(spec))
    if problems:
        reject(path, d.dirs.job_file("rejected", job_id), problems)
    else:
        move(path, d.dirs.job_file("queued", job_id))
    d.stability.forget(path.name)
    d.admit(rec)


def _check(d: Daemon, path: Path, job_id: str):
    rep = check_job(path, d.home, check_paths=True, allow_remote_code=d.cfg.allow_remote_code, job_id=job_id,
                    measure_tokens=False, other_outputs=outputs_of(d))
    return rep.spec, [str(p) for p in rep.problems]


def outputs_of(d: Daemon) -> dict[str, str]:
    """The output folder of every job the daemon knows: no new job may write inside or around one."""
    return {r.id: r.output_dir for r in d.records.values() if r.output_dir}


def _next_seq(d: Daemon) -> int:
    return max((r.seq for r in d.records.values()), default=0) + 1
