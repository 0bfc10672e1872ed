"""The daemon end to end with real processes: drop, reject, half-written files, control verbs, status."""

from __future__ import annotations

import json
import subprocess
import time

from conftest import PY, REPO, ctl, record, small_job, stop_daemon, wait_for
from farensed.core.status_peek import Fields, figure


def run_once(*args, timeout=120):
    return subprocess.run([PY, "-m", "farensed.daemon.main", "run", "--once", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def test_dropped_job_runs_to_done_and_a_bad_one_is_rejected_with_bytes_kept(home):
    # Given a good job and a malformed one dropped into the spool
    (home / "spool").mkdir()
    (home / "spool" / "farense.toml").write_text(small_job())
    bad = b'name = "x"\nmodel = 3\n[training\n'
    (home / "spool" / "broken.toml").write_bytes(bad)
    # When the daemon processes the queue once
    cp = run_once("--settle-seconds", "0.5")
    # Then the good job is done with outputs, the bad one rejected with its original bytes and every problem
    assert cp.returncode == 0, cp.stderr
    assert record(home, "farense")["state"] == "done"
    assert (home / "spool" / "done" / "farense.toml").read_text() == small_job()
    assert (home / "checkpoints" / "farense" / "adapters.safetensors").exists()
    assert (home / "spool" / "rejected" / "broken.toml").read_bytes() == bad
    err = (home / "spool" / "rejected" / "broken.toml.error.txt").read_text()
    assert "broken.toml:3: not valid TOML" in err
    assert record(home, "broken")["state"] == "rejected"
    assert list((home / "spool").glob("*.toml")) == []


def test_a_second_file_with_the_same_name_gets_its_own_id(home):
    # Given one job done as `farense`
    ctl("submit", str(_write(home / "farense.toml", small_job(steps=2))))
    assert run_once().returncode == 0
    # When a second farense.toml is submitted
    cp = ctl("submit", str(home / "farense.toml"))
    # Then it gets id farense-2 (printed last) and never touches the first job's outputs
    assert cp.stdout.strip().splitlines()[-1] == "farense-2"
    assert run_once().returncode == 0
    assert record(home, "farense-2")["output_dir"] == str(home / "checkpoints" / "farense-2")
    assert record(home, "farense-2")["state"] == "done"


def test_half_written_file_is_not_judged_early(home, daemon):
    # Given a daemon running
    d = daemon("--settle-seconds", "3")
    # When a job file is half written and left for a moment
    path = home / "spool" / "slow.toml"
    text = small_job(steps=2)
    path.write_text(text[: len(text) // 2])
    time.sleep(1.5)
    # Then it is neither rejected nor claimed yet
    assert path.exists() and record(home, "slow") is None
    # And when it is completed it is queued and runs
    path.write_text(text)
    wait_for(lambda: (record(home, "slow") or {}).get("state") == "done", 60, what="slow done")
    assert not (home / "spool" / "rejected" / "slow.toml").exists()
    _stop(d)


def test_cancel_pause_resume_and_status_json(home, daemon):
    # Given a running daemon with one long job running and one queued
    long_job = _write(home / "long.toml", small_job(120, cadence={"checkpoint_every": 5}))
    ctl("submit", str(long_job))
    ctl("submit", str(_write(home / "later.toml", small_job(steps=2))))
    d = daemon()
    wait_for(lambda: (figure(Fields(_job_status(home, "long")), "step") or 0) >= 2, 60, what="long training")
    st = json.loads(ctl("status", "--json").stdout)
    cur = st["current"]
    assert st["daemon"]["state"] == "running" and cur["id"] == "long" and cur["state"] == "running"
    assert cur["worker_pid"] > 0 and cur["progress"]["total_steps"] == 120 and cur["output_dir"].endswith("/long")
    assert [j["id"] for j in st["queue"]] == ["later"]
    # When the queued job is cancelled and the running one paused
    ctl("pause", "long")
    ctl("cancel", "later")
    # Then within a few seconds: later cancelled, long paused at a checkpoint, no worker left
    wait_for(lambda: (record(home, "later") or {}).get("state") == "cancelled", 5, what="later cancelled")
    wait_for(lambda: (record(home, "long") or {}).get("state") == "paused", 20, what="long paused")
    paused_step = json.loads((home / "checkpoints" / "long" / "training_state.json").read_text())["step"]
    assert paused_step < 120
    # When it is resumed, it continues from its checkpoint and finishes
    ctl("resume", "long")
    wait_for(lambda: (record(home, "long") or {}).get("state") == "done", 90, what="long done")
    assert "resumed" in (home / "checkpoints" / "long" / "worker.log").read_text()
    view = json.loads(ctl("status", "long", "--json").stdout)
    assert (view["state"], view["training"]["step"], view["training"]["total_steps"]) == ("done", 120, 120)
    # And retry brings the cancelled job back
    ctl("retry", "later")
    wait_for(lambda: (record(home, "later") or {}).get("state") == "done", 60, what="later done")
    _stop(d)
    # With the daemon stopped, status says so and still shows the jobs
    cp = ctl("status")
    assert "not running" in cp.stdout and "long" in cp.stdout


def test_second_daemon_refuses_and_errors_are_one_line(home, daemon):
    d = daemon()
    second = run_once(timeout=30)
    assert second.returncode == 1 and "already running" in second.stderr
    bad = ctl("cancel", "nosuchjob", check=False)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "no job 'nosuchjob'" in bad.stderr
    _stop(d)


def _job_status(home, job_id):
    try:
        st = json.loads((home / "status.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return st["current"] if st.get("current") and st["current"]["id"] == job_id else {}


def _write(path, text):
    path.write_text(text)
    return path


def _stop(d):
    """Stop the daemon; it must exit 0 (else its stderr's tail says why)."""
    assert stop_daemon(d) == 0, d.stderr.read().decode()[-2000:]
