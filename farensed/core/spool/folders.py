"""The spool folder: the drop area, one folder per queue state, job records and requests.

spool/*.toml            dropped, not yet judged
spool/<state>/<id>.toml the job file, in exactly one state folder
spool/rejected/<id>.toml a rejected file, original bytes, with <id>.toml.error.txt beside it
spool/jobs/<id>.json    the job's record (state, timestamps, restarts, worker)
spool/requests/*.json   control requests from farensectl (cancel, pause, resume, retry)
"""

from __future__ import annotations

import fnmatch
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from farensed.core.atomic import atomic_write_text, fsync_dir
from farensed.core.errors import FarensedError
from farensed.core.safe_read import kind
from farensed.core.states import STATES


class MoveError(FarensedError):
    """A rename inside the spool failed (a full disk, a read-only folder): worth trying again."""


IGNORED = (".*", "*~", "*.swp", "*.swx", "4913", "*.tmp", "#*#")


@dataclass(frozen=True)
class SpoolDirs:
    root: Path

    def state(self, state: str) -> Path:
        return self.root / state

    @property
    def jobs(self) -> Path:
        return self.root / "jobs"

    @property
    def requests(self) -> Path:
        return self.root / "requests"

    def job_file(self, state: str, job_id: str) -> Path:
        return self.state(state) / f"{job_id}.toml"

    @property
    def all(self) -> tuple[Path, ...]:
        """The spool and every folder in it: what other users must not be able to write."""
        return (self.root, self.jobs, self.requests, *(self.state(s) for s in STATES))

    def ensure(self) -> None:
        for d in self.all:
            try:
                d.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise FarensedError(f"{d}: cannot create spool folder: {e.strerror}") from None


def ignored(name: str) -> bool:
    """Dotfiles and editor temporaries are never judged."""
    return any(fnmatch.fnmatch(name, pat) for pat in IGNORED)


def dropped_files(root: Path) -> list[Path]:
    """The *.toml files sitting directly in the spool folder, oldest first."""
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return []
    found = []
    for e in entries:
        # symlinks, FIFOs and devices are listed too, so that they are rejected with a reason, not left
        if e.name.endswith(".toml") and not ignored(e.name) and not e.is_dir(follow_symlinks=False):
            try:
                found.append((e.stat(follow_symlinks=False).st_mtime_ns, e.name, Path(e.path)))
            except FileNotFoundError:
                continue
    return [p for _, _, p in sorted(found)]  # arrival order: oldest first


def move(src: Path, dst: Path) -> None:
    """Atomic rename within the spool, made durable; never overwrites."""
    if dst.exists():
        raise FarensedError(f"{dst}: cannot move {src.name} there: a file already exists")
    try:
        os.rename(src, dst)
    except OSError as e:
        raise MoveError(f"{src}: cannot move to {dst}: {e.strerror}") from None
    fsync_dir(dst.parent)
    if src.parent != dst.parent:
        fsync_dir(src.parent)


def reject(src: Path, dst: Path, problems: list[str]) -> Path:
    """Move the original bytes to rejected/<id>.toml and write every problem beside it."""
    atomic_write_text(error_file(dst), "\n".join(problems) + "\n")
    move(src, dst)
    return dst


def error_file(job_file: Path) -> Path:
    return job_file.with_name(job_file.name + ".error.txt")


def find_job_file(dirs: SpoolDirs, job_id: str) -> Path | None:
    """Where the job file of `job_id` is now (any state folder)."""
    for s in STATES:
        p = dirs.job_file(s, job_id)
        if p.exists():
            return p
    return None


def permission_problem(root: Path) -> tuple[str, str] | None:
    """(problem, fix) when other users could write into this folder of the home (a job names code paths
    and models we load; a record says which folder a job writes), else None. The daemon refuses to
    start; doctor reports it."""
    st = root.stat()
    if st.st_uid != os.getuid():
        return (f"{root}: belongs to uid {st.st_uid}, not to the daemon's user {os.getuid()}",
                f"chown {os.getuid()} {root}")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{root}: writable by other users ({stat.filemode(st.st_mode)})", f"chmod go-w {root}"
    return None


def check_spool_permissions(dirs: SpoolDirs, home_root: Path) -> None:
    """Refuse a home, spool or spool folder (queued/, jobs/, requests/, ...) that other users could write."""
    for folder in (home_root, *dirs.all):
        problem = permission_problem(folder)
        if problem is not None:
            raise FarensedError(f"{problem[0]}; run: {problem[1]}")


def ownership_problem(path: Path, st: os.stat_result, uid: int) -> str | None:
    """Why a dropped job file is refused unread: a symlink, or owned by someone else."""
    if stat.S_ISLNK(st.st_mode):
        return f"{path}: is a symbolic link; drop the job file itself"
    if not stat.S_ISREG(st.st_mode):
        return f"{path}: is {kind(st.st_mode)}, not a regular file; drop the job file itself"
    if st.st_uid != uid:
        return f"{path}: owned by uid {st.st_uid}, not by the daemon's user {uid}"
    return None
