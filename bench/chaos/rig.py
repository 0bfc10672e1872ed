"""The rig of bench/chaos/chaos.py: a temp home, a real `farensed run` restarted after every exit
(as launchd or systemd would), small tmpfs output roots, and the clean-up of every process
it started and every filesystem it mounted. Standalone: nothing from tests/ is imported."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable
STATES = ("queued", "running", "paused", "done", "failed", "cancelled", "rejected")
FINAL = frozenset({"done", "failed", "cancelled", "rejected"})
PR_SET_CHILD_SUBREAPER = 36
FILLER = ".chaos-filler"  # the file that fills a small filesystem


def job_toml(name: str, steps: int, seed: int, output: str | None = None) -> str:
    """A short demo job: the tiny model on data/, a checkpoint every 3 steps, an eval every 6."""
    out = f'output = "{output}"\n' if output else ""
    return f"""schema_version = 1
name = "{name}"
model = "models/farense-tiny"
data = "data"
max_restarts = 10
{out}
[training]
batch_size = 4
grad_accumulation = 2
learning_rate = 2e-3
max_steps = {steps}
max_seq_length = 256
warmup_steps = 2
seed = {seed}

[lora]
rank = 8
scale = 16.0
num_layers = -1

[cadence]
checkpoint_every = 3
eval_every = 6
log_every = 1
keep_checkpoints = 2
"""


def make_home() -> Path:
    """An empty home under /tmp with models/ and data/ linked from the repository."""
    root = Path(tempfile.mkdtemp(prefix="farensed-chaos-"))
    for name in ("models", "data"):
        (root / name).symlink_to(REPO / name)
    (root / "spool").mkdir(mode=0o755)
    (root / "checkpoints").mkdir(mode=0o755)
    (root / "bench").mkdir()
    return root


def drop(home: Path, name: str, text: str) -> None:
    """Drop a job file the way an editor saving atomically would: a dotfile renamed into place."""
    tmp = home / "spool" / f".{name}.tmp"
    tmp.write_text(text)
    os.rename(tmp, home / "spool" / name)


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def records(home: Path) -> dict[str, dict]:
    out = {}
    for p in (home / "spool" / "jobs").glob("*.json"):
        if (rec := read_json(p)) is not None:
            out[p.stem] = rec
    return out


def job_files(home: Path, job_id: str) -> list[str]:
    """The state folders that hold this job's file (exactly one, if nothing is lost)."""
    return [s for s in STATES if (home / "spool" / s / f"{job_id}.toml").exists()]


def ctl(home: Path, *args: str) -> subprocess.CompletedProcess:
    """farensectl as a real subprocess (bounded)."""
    cmd = [PY, "-m", "farensed.cli.main", *args, "--home", str(home)]
    try:
        return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=60, env=child_env())
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(cmd, 124, "", "timed out after 60 s")


def child_env(faults: str | None = None) -> dict[str, str]:
    """This repository's package first; FARENSED_FAULTS only when the bench sets it."""
    env = {k: v for k, v in os.environ.items() if k not in ("FARENSED_FAULTS", "FARENSED_HOME")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    if faults:
        env["FARENSED_FAULTS"] = faults
    return env


def become_subreaper() -> bool:
    """Orphaned workers (their daemon was killed) become our children, as they would be
    launchd's, so that we reap them; otherwise they may stay zombies the restarted daemon
    waits on."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def reap_orphans(keep: set[int]) -> None:
    """Collect exited children that are not our own Popen objects (workers left by a killed daemon)."""
    for child in psutil.Process().children():
        if child.pid in keep:
            continue
        try:
            os.waitpid(child.pid, os.WNOHANG)
        except ChildProcessError:
            pass


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def signal_group(pid: int, sig: int) -> bool:
    try:
        os.killpg(pid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


@dataclass
class Life:
    """One daemon process, from start to exit."""

    n: int
    pid: int
    started: float
    stderr: Path
    ended: float | None = None
    returncode: int | None = None
    injected: bool = False  # we killed (or stopped) it

    def stderr_tail(self, lines: int = 4) -> list[str]:
        try:
            return [ln for ln in self.stderr.read_text(errors="replace").splitlines() if ln.strip()][-lines:]
        except OSError:
            return []


@dataclass
class Daemon:
    """`farensed run` for one home; restarted after every exit, like KeepAlive/Restart=always."""

    home: Path
    say: object
    faults: str | None = None  # FARENSED_FAULTS for every worker (the fallback disk_full hook)
    restart_delay: float = 1.0
    give_up_after: int = 5  # uninjected exits in a row, each within `short_life` of its start
    short_life: float = 20.0
    lives: list[Life] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    restart_at: float | None = None
    crash_loop: bool = False
    _streak: int = 0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def pids(self) -> set[int]:
        return {life.pid for life in self.lives}

    @property
    def up(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        n = len(self.lives) + 1
        err = self.home / "bench" / f"daemon-{n}.stderr"
        with open(err, "wb") as f:
            self.proc = subprocess.Popen([PY, "-m", "farensed.daemon.main", "run", "--home", str(self.home)],
                                         cwd=self.home, env=child_env(self.faults), stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=f, start_new_session=True)
        self.lives.append(Life(n, self.proc.pid, time.monotonic(), err))
        self.restart_at = None

    def check(self, now: float) -> None:
        """Notice an exit we did not cause (count it, restart after a second); start when due."""
        if self.proc is not None and (rc := self.proc.poll()) is not None:
            life = self._ended(rc)
            self._streak = self._streak + 1 if life.ended - life.started < self.short_life else 1
            tail = " | ".join(life.stderr_tail(2)) or "(nothing on stderr)"
            if self._streak >= self.give_up_after:
                self.crash_loop = True
                self.say(f"daemon exited by itself (rc {rc}), {self._streak} times in a row: crash loop,"
                         f" not restarted again: {tail}")
                return
            self.say(f"daemon exited by itself (rc {rc}) after {life.ended - life.started:.1f} s: {tail};"
                     f" restarting in {self.restart_delay:.0f} s")
            self.restart_at = now + self.restart_delay
        if self.proc is None and self.restart_at is not None and now >= self.restart_at and not self.crash_loop:
            self.start()

    def revive(self) -> None:
        """Out of a crash loop once its cause is gone: restart now, count afresh."""
        self.crash_loop, self._streak = False, 0
        self.restart_at = time.monotonic()

    def _ended(self, rc: int, injected: bool = False) -> Life:
        life = self.lives[-1]
        life.ended, life.returncode, life.injected = time.monotonic(), rc, injected
        self.proc = None
        return life

    def kill(self, restart_after: float) -> int | None:
        """SIGKILL the daemon alone (its worker lives on, in its own session); restart it later."""
        if not self.up:
            return None
        pid = self.proc.pid
        os.kill(pid, signal.SIGKILL)
        self._ended(self.proc.wait(10), injected=True)
        self._streak = 0
        self.restart_at = time.monotonic() + restart_after
        return pid

    def stop(self, timeout: float = 40.0) -> int | None:
        """SIGTERM (the worker checkpoints and stops), then SIGKILL after `timeout`."""
        self.restart_at = None
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            signal_group(self.proc.pid, signal.SIGKILL)
            rc = self.proc.wait(10)
            self.say(f"daemon did not stop within {timeout:.0f} s of SIGTERM: killed")
        return self._ended(rc, injected=True).returncode


class Mounts:
    """Small tmpfs filesystems (root only), unmounted at the end whatever happens."""

    def __init__(self) -> None:
        self.paths: list[Path] = []

    def tmpfs(self, path: Path, size_mib: int) -> str | None:
        """Mount a tmpfs at `path`; None when done, else why not."""
        if os.geteuid() != 0 or shutil.which("mount") is None:
            return "not root"
        path.mkdir(parents=True, exist_ok=True)
        cmd = ["mount", "-t", "tmpfs", "-o", f"size={size_mib}m,mode=0755", "farensed-chaos", str(path)]
        cp = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=30)
        if cp.returncode != 0:
            return cp.stderr.strip() or f"mount exited {cp.returncode}"
        self.paths.append(path)
        return None

    def unmount_all(self, keep: bool = False) -> list[str]:
        """Unmount every mount; a busy one is retried, then detached lazily. Returns problems.
        With `keep`, what was on it (less the filler) is copied back into the mount point."""
        problems = []
        for path in reversed(self.paths):
            saved = _save(path) if keep else None
            for _ in range(10):
                if subprocess.run(["umount", str(path)], check=False, capture_output=True, timeout=30).returncode == 0:
                    break
                time.sleep(0.5)
            else:
                subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True, timeout=30)
                problems.append(f"{path}: busy, detached lazily")
            if saved is not None and not os.path.ismount(path):
                shutil.copytree(saved, path, dirs_exist_ok=True, symlinks=True)
                shutil.rmtree(saved, ignore_errors=True)
        self.paths.clear()
        return problems


def _save(path: Path) -> Path | None:
    dest = Path(tempfile.mkdtemp(prefix="farensed-chaos-mount-"))
    try:
        shutil.copytree(path, dest, dirs_exist_ok=True, symlinks=True, ignore=shutil.ignore_patterns(FILLER))
    except (OSError, shutil.Error):
        pass
    return dest



def fill(mount: Path, leave: int) -> int:
    """Fill the filesystem at `mount` with one file until `leave` bytes are free; bytes written."""
    st = os.statvfs(mount)
    want = max(0, st.f_bavail * st.f_frsize - leave)
    fd = os.open(mount / FILLER, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        try:
            os.posix_fallocate(fd, 0, want)  # at once, not a slow write the worker could race
        except OSError:
            pass
        written, chunk = os.fstat(fd).st_size, b"\0" * (1 << 16)
        while written < want:  # what fallocate left (and, for leave=0, the last pages)
            written += os.write(fd, chunk[: min(len(chunk), want - written)])
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
    finally:
        os.close(fd)
    return os.stat(mount / FILLER).st_size


def free(mount: Path) -> None:
    (mount / FILLER).unlink(missing_ok=True)


def kill_everything(workers: dict[int, float]) -> None:
    """SIGKILL every process group we started or adopted (our descendants: daemons and, as
    subreaper, orphaned workers; and the workers the records named, if still the same
    process), then reap them. A pid reused by someone else's process is left alone."""
    me, mine = psutil.Process(), os.getpgrp()
    procs = me.children(recursive=True)
    groups = set()
    for p in procs:
        try:
            groups.add(os.getpgid(p.pid))
        except OSError:
            pass
    for pid, created in workers.items():
        try:
            if abs(psutil.Process(pid).create_time() - created) < 0.05:
                groups.add(pid)  # a worker leads its own process group
        except psutil.Error:
            pass
    for g in groups - {mine, 0, 1}:
        signal_group(g, signal.SIGKILL)
    for p in procs:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=10)
    reap_orphans(set())


def remove_home(home: Path, mounts: Mounts) -> str | None:
    """rm -rf the temp home, unless something is still mounted under it."""
    still = [p for p in mounts.paths if os.path.ismount(p)]
    if still:
        return f"{home} kept: still mounted: {', '.join(map(str, still))}"
    shutil.rmtree(home, ignore_errors=True)
    return None


def worker_device() -> str:
    """MLX's default device in the worker's interpreter ("gpu" or "cpu"), asked in a child: the bench
    itself never imports mlx."""
    import subprocess

    out = subprocess.run([PY, "-c", "import mlx.core as mx; print(mx.default_device().type.name)"],
                         capture_output=True, text=True, timeout=120)
    return "gpu" if "gpu" in out.stdout else "cpu"
