"""The daemon against real worker faults: a hung worker is restarted by the stall
watchdog, a transient Metal fault is retried from the last checkpoint, and the job ends done."""

from __future__ import annotations

import json
import sys

from conftest import ctl, record, small_job, stop_daemon, wait_for


def _events(home, name):
    lines = (home / "logs" / "farensed.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == name]


def _run(home, daemon, faults: str, *args, job="f", steps=8):
    d = daemon(*args, env={"FARENSED_FAULTS": faults})
    (home / f"{job}.toml").write_text(small_job(steps, job, cadence={"checkpoint_every": 2}))
    ctl("submit", str(home / f"{job}.toml"))
    wait_for(lambda: (record(home, job) or {}).get("state") == "done", 120, what=f"{job} done")
    stop_daemon(d)
    return record(home, job)


def test_a_hung_worker_is_restarted_by_the_stall_watchdog_and_the_job_finishes(home, daemon):
    # Given a worker that stops making progress as step 5 starts, and a 4 s stall limit
    rec = _run(home, daemon, "hang@5", "--stall-seconds", "4")
    # Then the watchdog stopped it, the job resumed from its checkpoint and finished
    [stall] = _events(home, "worker_stalled")
    assert stall["job_id"] == "f" and rec["restarts"] == 1
    exits = _events(home, "worker_exited")
    assert exits[0]["outcome"] == "stall" and exits[0]["action"] == "restart"
    assert json.loads((home / "checkpoints" / "f" / "training_state.json").read_text())["step"] == 8


def test_a_transient_metal_fault_is_retried_from_the_last_checkpoint_without_lowering(home, daemon):
    # Given a worker aborted by Metal's ImpactingInteractivity fault at step 5 (as the user's run was)
    rec = _run(home, daemon, "gpu_fault@5")
    # Then the daemon classified it, restarted it as it was (a first fault), and the job finished
    exits = _events(home, "worker_exited")
    assert exits[0]["outcome"] == "gpu_fault" and exits[0]["action"] == "restart"
    assert "kIOGPUCommandBufferCallbackErrorImpactingInteractivity" in exits[0]["detail"]
    state = json.loads((home / "checkpoints" / "f" / "training_state.json").read_text())
    assert rec["restarts"] == 1 and state["micro_batch"] == 4 and state["downshifts"] == []


def test_a_slow_start_after_a_restart_is_not_a_stall_though_the_last_run_was_training(home, daemon, tmp_path):
    # Given a machine so busy that a worker takes 10 s to start (its interpreter waits first), a 5 s
    # stall limit, and a first worker killed at step 3, its progress.json left saying "training"
    slow = tmp_path / "slowpy"
    slow.write_text(f'#!/bin/sh\nsleep 10\nexec "{sys.executable}" "$@"\n')
    slow.chmod(0o755)
    rec = _run(home, daemon, "kill@3", "--stall-seconds", "5", "--worker-python", str(slow))
    # Then the restarted worker's start counted as a start (no stall), and the job ended after one restart
    assert _events(home, "worker_stalled") == []
    assert [e["outcome"] for e in _events(home, "worker_exited")] == ["crash", "ok"] and rec["restarts"] == 1
