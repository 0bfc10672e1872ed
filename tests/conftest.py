"""Shared fixtures: a farensed home in tmp_path (models/ and data/ linked from the repository),
small job files, and real daemon/client processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
FARENSECTL = str(Path(sys.executable).parent / "farensectl")


def small_job(name: str = "demo", steps: int = 6, checkpoint_every: int = 2, **extra) -> str:
    """A demo job cut down to a few steps on the tiny model: seconds, not minutes."""
    top = "".join(f"{k} = {json.dumps(v)}\n" for k, v in extra.items())
    return f"""schema_version = 1
name = "{name}"
model = "models/farense-tiny"
data = "data"
{top}
[training]
batch_size = 4
grad_accumulation = 2
learning_rate = 2e-3
max_steps = {steps}
max_seq_length = 256
warmup_steps = 2
seed = 0

[lora]
rank = 8
scale = 16.0
num_layers = -1

[cadence]
checkpoint_every = {checkpoint_every}
eval_every = 1000
log_every = 1
keep_checkpoints = 2
"""


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty farensed home; FARENSED_HOME points at it for every process started from the test."""
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
    return subprocess.Popen([PY, "-m", "farensed.cli.daemon_main", "run", *args], cwd=REPO,
                            env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)


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
