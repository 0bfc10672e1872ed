"""Shared fixtures: a farensed home in tmp_path for every test (models/ and data/ linked from the
repository), the one small job file, and real daemon/client processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
FARENSECTL = str(Path(sys.executable).parent / "farensectl")


def small_job(steps: int = 6, name: str = "test", **sections: dict) -> str:
    """The demo job cut down to `steps` steps on the tiny model, with absolute paths (any home runs it)
    and small cadences; `sections` override keys per TOML table, `top` the top-level keys."""
    top = {"schema_version": 1, "name": name, "model": REPO / "models" / "farense-tiny", "data": REPO / "data",
           "mask_prompt": True, **sections.pop("top", {})}
    tables = {
        "training": {"max_steps": steps, "warmup_steps": 2, "learning_rate": 5e-3},
        "cadence": {"checkpoint_every": 4, "eval_every": 4, "log_every": 2, "keep_checkpoints": 10},
        "generate": {"prompts": [], "max_tokens": 8},
    }
    for table, values in sections.items():
        tables.setdefault(table, {}).update(values)
    lines = [f"{k} = {_toml(v)}" for k, v in top.items()]
    for table, values in tables.items():
        lines += [f"[{table}]", *(f"{k} = {_toml(v)}" for k, v in values.items())]
    return "\n".join(lines) + "\n"


def _toml(v) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return f'"{v}"' if isinstance(v, (str, Path)) else repr(v)


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch) -> Path:
    """An empty farensed home for every test; FARENSED_HOME points at it for every process the test
    starts, so no test touches the repository's own spool, status.json or lock."""
    root = tmp_path / "home"
    root.mkdir()
    for name in ("models", "data"):
        (root / name).symlink_to(REPO / name)
    monkeypatch.setenv("FARENSED_HOME", str(root))
    monkeypatch.delenv("FARENSED_FAULTS", raising=False)
    return root


def ctl(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run farensectl as a real subprocess."""
    cp = subprocess.run([FARENSECTL, *args], capture_output=True, text=True, cwd=REPO,
                        timeout=60)
    if check and cp.returncode != 0:
        raise AssertionError(f"farensectl {' '.join(args)} exited {cp.returncode}: {cp.stderr}")
    return cp


def start_daemon(*args: str, env: dict | None = None) -> subprocess.Popen:
    """`farensed run` as a real subprocess (its own session, so a test can kill it alone)."""
    return subprocess.Popen([PY, "-m", "farensed.daemon.main", "run", *args], cwd=REPO,
                            env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)


@pytest.fixture
def daemon(home):
    """Start `farensed run` for the test's home: daemon(*args, env=...) returns the process once it
    has written status.json (or exited). Any still running at the end is stopped (stop_daemon)."""
    procs = []

    def start(*args: str, env: dict | None = None) -> subprocess.Popen:
        proc = start_daemon(*args, env=env)
        procs.append(proc)
        wait_for(lambda: (home / "status.json").exists() or proc.poll() is not None, what="daemon start")
        return proc

    yield start
    for proc in procs:
        stop_daemon(proc)


def stop_daemon(proc: subprocess.Popen, timeout: float = 30) -> int:
    """SIGTERM (the worker checkpoints and the daemon exits), SIGKILL of its group after `timeout`;
    returns its exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode


def wait_for(predicate, timeout: float = 60.0, every: float = 0.1, what: str = "condition"):
    """Poll `predicate` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def record(home: Path, job_id: str) -> dict | None:
    try:
        return json.loads((home / "spool" / "jobs" / f"{job_id}.json").read_text())
    except (FileNotFoundError, ValueError):
        return None
