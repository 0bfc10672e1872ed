"""Crash and reboot with real processes and signals: the job resumes once and ends bit-identical."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest
from safetensors.numpy import load_file

from conftest import PY, REPO, record, small_job, wait_for
from farensed.host.blas import worker_env

STEPS = 12
JOB = small_job(STEPS, "farense", cadence={"checkpoint_every": 2})


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Adapters of an uninterrupted run of the same job (the worker alone, same BLAS as the daemon's)."""
    root = tmp_path_factory.mktemp("ref")
    for name in ("models", "data"):
        (root / name).symlink_to(REPO / name)
    run = root / "checkpoints" / "farense"
    run.mkdir(parents=True)
    (run / "job.toml").write_text(JOB)
    subprocess.run([PY, "-m", "farensed.worker", str(run), "--home", str(root)], check=True, cwd=REPO,
                   capture_output=True, timeout=120, env=worker_env())
    return load_file(run / "adapters.safetensors")


def assert_same_adapters(home, reference):
    got = load_file(home / "checkpoints" / "farense" / "adapters.safetensors")
    assert got.keys() == reference.keys()
    for k in got:
        assert got[k].tobytes() == reference[k].tobytes(), k


def progress_step(home) -> int:
    try:
        return json.loads((home / "checkpoints" / "farense" / "progress.json").read_text())["step"]
    except (FileNotFoundError, ValueError, KeyError):
        return 0


def run_once(*args: str, env=None):
    cp = subprocess.run([PY, "-m", "farensed.daemon.main", "run", "--once", *args], cwd=REPO, capture_output=True,
                        text=True, timeout=180, env={**os.environ, **(env or {})})
    assert cp.returncode == 0, cp.stderr[-2000:]


def log_events(home) -> list[dict]:
    return [json.loads(x) for x in (home / "logs" / "farensed.jsonl").read_text().splitlines()]


def test_sigkill_daemon_and_worker_then_restart_resumes_bit_identical(home, daemon, reference):
    # Given a daemon running a job past its first checkpoints
    (home / "spool").mkdir()
    (home / "spool" / "farense.toml").write_text(JOB)
    d = daemon()
    wait_for(lambda: progress_step(home) >= 5, 60, what="step 5")
    worker = record(home, "farense")["worker_pid"]
    # When daemon and worker are SIGKILLed together (a power cut, as far as they can tell)
    os.killpg(d.pid, signal.SIGKILL)
    os.killpg(worker, signal.SIGKILL)
    d.wait()
    # Then a new daemon resumes the job by itself, once, and it ends as an uninterrupted run
    run_once()
    rec = record(home, "farense")
    assert rec["state"] == "done" and rec["restarts"] == 1
    assert [h["to_state"] for h in rec["history"]] == ["queued", "running", "done"]
    summary = json.loads((home / "checkpoints" / "farense" / "training_summary.json").read_text())
    assert summary["restarts"] == 1
    assert_same_adapters(home, reference)
    starts = [e for e in log_events(home) if e["event"] == "worker_started"]
    assert len(starts) == 2


def test_orphan_worker_is_stopped_before_the_job_resumes(home, daemon, reference):
    # Given a daemon whose worker is training, and will hang at step 8 rather than finish: on a busy
    # machine a worker left running could otherwise end the job before the next daemon is up
    (home / "spool").mkdir()
    (home / "spool" / "farense.toml").write_text(JOB)
    d = daemon(env={"FARENSED_FAULTS": "hang@8"})
    wait_for(lambda: progress_step(home) >= 3, 60, what="step 3")
    orphan = record(home, "farense")["worker_pid"]
    # When only the daemon dies, leaving its worker alive
    os.killpg(d.pid, signal.SIGKILL)
    d.wait()
    os.kill(orphan, 0)  # still alive
    # Then the next daemon stops the orphan (SIGTERM, then SIGKILL after the grace) before resuming;
    # one writer at a time
    run_once("--stop-grace", "3")
    events = log_events(home)
    assert any(e["event"] == "orphan_worker_found" and e["pid"] == orphan for e in events)
    with pytest.raises(ProcessLookupError):
        os.kill(orphan, 0)
    assert record(home, "farense")["state"] == "done"
    assert_same_adapters(home, reference)


def test_oom_abort_lowers_micro_batch_and_the_job_finishes(home):
    # Given a job whose worker aborts with Metal's out-of-memory message at step 3
    (home / "spool").mkdir()
    (home / "spool" / "farense.toml").write_text(small_job(5, "farense", cadence={"checkpoint_every": 2}))
    # When the daemon runs it
    run_once(env={"FARENSED_FAULTS": "abort_oom@3"})
    # Then the micro-batch was halved in training_state.json (accumulation doubled) and the job is done
    state = json.loads((home / "checkpoints" / "farense" / "training_state.json").read_text())
    assert (state["micro_batch"], state["grad_accumulation"], state["status"]) == (2, 4, "done")
    assert state["downshifts"][0]["source"] == "process_death" and state["restarts"] == 1
    rec = record(home, "farense")
    assert rec["state"] == "done" and rec["restarts"] == 1
    assert any(e["event"] == "worker_exited" and e["outcome"] == "oom" for e in log_events(home))
