"""The daemon outlives any one job's failure: each case runs a real daemon, breaks one job for
real, and ends with the daemon still up, that job failed with its reason, and the next job done."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import textwrap
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import PY, REPO, ctl, record, small_job, wait_for

SETTLE = ("--settle-seconds", "0.5")


def submit(home: Path, name: str, text: str) -> str:
    path = home / f"{name}.toml"
    path.write_text(text)
    return ctl("submit", str(path)).stdout.strip().splitlines()[-1]


def state(home: Path, job_id: str, *want: str, timeout: float = 120) -> dict:
    return wait_for(lambda: (r := record(home, job_id)) and r["state"] in want and r, timeout=timeout,
                    what=f"{job_id} in {want} (now {(record(home, job_id) or {}).get('state')})")


def phase_failures(home: Path) -> list[dict]:
    lines = (home / "logs" / "farensed.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e.get("event") == "phase_failed"]


@contextmanager
def read_only(path: Path):
    """Make `path` a read-only folder for real: chmod for a user, a read-only bind mount for root
    (root writes through any mode bits). Verified by a write that must fail."""
    path.mkdir(parents=True, exist_ok=True)
    root = os.geteuid() == 0
    if root:
        subprocess.run(["mount", "--bind", str(path), str(path)], check=True)
        subprocess.run(["mount", "-o", "remount,ro,bind", str(path)], check=True)
    else:
        path.chmod(0o555)
    try:
        with pytest.raises(OSError):
            (path / "probe").write_text("x")
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True) if root else path.chmod(0o755)


def test_a_queued_job_file_removed_or_replaced_by_garbage_fails_that_job_only(home, daemon):
    # Given a daemon running a long job, with three more queued behind it
    d = daemon(*SETTLE)
    first = submit(home, "long", small_job(100000, "long"))
    state(home, first, "running")
    gone, junk, nxt = (submit(home, n, small_job(2, n)) for n in ("gone", "junk", "next"))
    state(home, nxt, "queued")
    # When one queued file is removed by hand and another is overwritten with garbage
    (home / "spool" / "queued" / f"{gone}.toml").unlink()
    (home / "spool" / "queued" / f"{junk}.toml").write_text("name = \n[training\n")
    ctl("cancel", first)
    # Then those two fail with reasons naming the file, the next job runs, and the daemon is still up
    assert "removed from the spool" in state(home, gone, "failed")["reason"]
    assert f"queued/{junk}.toml:1" in state(home, junk, "failed")["reason"]
    assert state(home, nxt, "done")
    assert d.poll() is None
    assert {e["phase"] for e in phase_failures(home)} == {"start_next"}
    assert (home / "spool" / "failed" / f"{junk}.toml").read_text() == "name = \n[training\n"


def test_an_output_folder_that_cannot_be_created_or_written_fails_that_job_only(home, daemon):
    # Given read-only folders under the checkpoints root: one to create an output in, one as the output
    ro = home / "checkpoints" / "ro"
    with read_only(ro), read_only(home / "checkpoints" / "ro-out"):
        d = daemon(*SETTLE)
        create = submit(home, "create", small_job(2, "create", top={"output": "checkpoints/ro/out"}))
        write = submit(home, "write", small_job(2, "write", top={"output": "checkpoints/ro-out"}))
        nxt = submit(home, "next", small_job(2, "next"))
        # Then each fails naming its path and the OS's reason, and the next job runs
        reason = state(home, create, "failed")["reason"]
        assert str(ro / "out") in reason and ("Read-only" in reason or "Permission" in reason)
        reason = state(home, write, "failed")["reason"]
        assert str(home / "checkpoints" / "ro-out") in reason and ("Read-only" in reason or "Permission" in reason)
        assert state(home, nxt, "done")
        assert d.poll() is None


def test_a_corrupted_or_removed_job_record_is_recovered_at_start_without_losing_the_job(home, daemon):
    # Given a job stopped mid-run by a daemon stop, and two jobs queued behind it
    d = daemon(*SETTLE)
    first = submit(home, "first", small_job(100000, "first", cadence={"checkpoint_every": 2}))
    wait_for(lambda: list((home / "checkpoints" / first).glob("checkpoint_*")), what="a checkpoint")
    corrupt, removed = (submit(home, name, small_job(2, name)) for name in ("corrupt", "removed"))
    state(home, removed, "queued")
    d.send_signal(signal.SIGTERM)
    assert d.wait(30) == 0
    # When the running job's record is corrupted, a queued one's removed, another queued one's corrupted
    jobs = home / "spool" / "jobs"
    (jobs / f"{first}.json").write_text('{"schema_version": 1, "id": "first", "sta')
    (jobs / f"{removed}.json").unlink()
    (jobs / f"{corrupt}.json").write_text("not json")
    d = daemon(*SETTLE)
    # Then the running job fails with a reason naming its record (kept aside), the queued ones run again
    reason = state(home, first, "failed")["reason"]
    assert f"{jobs / first}.json: its record was unreadable" in reason and "retry" in reason
    assert list(jobs.glob(f"{first}.json.unreadable-*"))
    assert "recovered: " in state(home, removed, "done")["history"][0]["reason"]
    assert "its record was missing" in record(home, removed)["history"][0]["reason"]
    assert "its record was unreadable" in state(home, corrupt, "done")["history"][0]["reason"]
    # And a retry of the failed job resumes it from its checkpoint
    ctl("retry", first)
    wait_for(lambda: "resumed" in (home / "checkpoints" / first / "worker.log").read_text(), what="resume")
    ctl("cancel", first)
    state(home, first, "cancelled")
    assert d.poll() is None


def test_the_model_or_data_folder_removed_after_submission_fails_that_job_only(home, daemon):
    # Given copies of the model and the data that two queued jobs use, behind a long job
    shutil.copytree(REPO / "models" / "farense-tiny", home / "mine" / "model")
    shutil.copytree(REPO / "data", home / "mine" / "data")
    d = daemon(*SETTLE)
    first = submit(home, "long", small_job(100000, "long"))
    state(home, first, "running")
    no_model = submit(home, "nomodel", small_job(2, "nomodel", top={"model": "mine/model"}))
    no_data = submit(home, "nodata", small_job(2, "nodata", top={"data": "mine/data"}))
    nxt = submit(home, "next", small_job(2, "next"))
    state(home, nxt, "queued")
    # When both folders are removed while the jobs wait
    shutil.rmtree(home / "mine")
    ctl("cancel", first)
    # Then each fails naming the missing folder, and the next job runs
    assert f"model folder {home / 'mine' / 'model'} no longer exists" in state(home, no_model, "failed")["reason"]
    assert f"data {home / 'mine' / 'data'} no longer exists" in state(home, no_data, "failed")["reason"]
    assert state(home, nxt, "done")
    assert d.poll() is None


def test_a_worker_that_cannot_be_spawned_fails_that_job_only(home, daemon):
    # Given a daemon whose worker interpreter is a wrapper that records the worker's environment
    wrapper = home / "worker-python"
    wrapper.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        env > "{home}/worker.env"
        exec "{PY}" "$@"
        """))
    wrapper.chmod(0o644)  # not executable: the spawn fails (for root too: exec needs an x bit)
    d = daemon(*SETTLE, "--worker-python", str(wrapper))
    broken = submit(home, "broken", small_job(2, "broken"))
    # Then that job fails naming the interpreter
    reason = state(home, broken, "failed")["reason"]
    assert "cannot start the worker" in reason and str(wrapper) in reason
    # And once the wrapper can run, the next job runs through it (without Metal's variable on Linux)
    wrapper.chmod(0o755)
    assert state(home, submit(home, "next", small_job(2, "next")), "done")
    env = (home / "worker.env").read_text()
    assert "AGX_RELAX_CDM_CTXSTORE_TIMEOUT" not in env
    assert d.poll() is None
    status = json.loads((home / "status.json").read_text())
    assert status["daemon"]["metal_relax"] == "not applicable (not macOS)"


def test_status_json_or_the_log_folder_not_writable_does_not_stop_the_daemon(home, daemon):
    # Given status.json that cannot be replaced (a folder stands in its place) and a read-only log folder
    (home / "status.json").mkdir()
    with read_only(home / "logs"):
        d = daemon(*SETTLE)
        job = submit(home, "job", small_job(2, "job"))
        # Then jobs still run to done, and the daemon says on stderr why it could not log or publish
        assert state(home, job, "done")
        assert d.poll() is None
        d.send_signal(signal.SIGTERM)
        err = d.communicate(timeout=30)[1].decode()
    assert "log_file_unavailable" in err and str(home / "logs" / "farensed.jsonl") in err
    assert "phase_failed" in err and "publish_status" in err
    assert d.returncode == 0


def test_client_os_errors_are_one_line_naming_the_path(home):
    # Given a queued job whose spool requests folder the client cannot write into
    from farensed.core.spool.records import JobRecord, save

    jobs = home / "spool" / "jobs"
    jobs.mkdir(parents=True)
    save(jobs, JobRecord(id="job", file_name="job.toml", state="queued", since=1.0, seq=1, submitted_at=1.0))
    with read_only(home / "spool" / "requests"):
        cp = ctl("cancel", "job", check=False)
    # Then cancel fails with one Error line naming the folder, no traceback
    assert cp.returncode != 0
    assert cp.stderr.startswith("Error: ") and str(home / "spool" / "requests") in cp.stderr
    assert "Traceback" not in cp.stderr and len(cp.stderr.strip().splitlines()) == 1
