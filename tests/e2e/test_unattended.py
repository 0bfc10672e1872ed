"""Left alone overnight: caffeinate while a worker runs, a notification and the user's hook when a
job ends, a full disk pauses instead of breaking a checkpoint, an open spool is refused,
symlinked job files are rejected, and battery power pauses. macOS commands are fakes on PATH
that record their arguments (the real ones are not on Linux)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from conftest import PY, REPO, ctl, record, small_job, stop_daemon, wait_for
from farensed.core.spool.folders import ownership_problem
from farensed.daemon.unattended import battery_action, notification_command, sleep_guard_wanted

RECORDER = '#!/bin/sh\necho "$(basename "$0") $*" >> "{log}"\n{tail}\n'


def fake_commands(tmp: Path, log: Path) -> dict:
    """caffeinate waits like the real one (-w PID); osascript and notify-send just record."""
    bin_dir = tmp / "fakebin"
    bin_dir.mkdir()
    tails = {"caffeinate": 'while kill -0 "$3" 2>/dev/null; do sleep 0.1; done', "osascript": "",
             "notify-send": ""}
    for name, tail in tails.items():
        (bin_dir / name).write_text(RECORDER.format(log=log, tail=tail))
        (bin_dir / name).chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def _status_daemon(home: Path) -> dict:
    try:
        return json.loads((home / "status.json").read_text())["daemon"]
    except (FileNotFoundError, ValueError, KeyError):
        return {}


def test_caffeinate_covers_the_worker_and_the_end_is_notified_and_hooked(home, daemon, tmp_path):
    # Given a daemon with the sleep guard on, notifications through osascript and a hook
    calls, hook_out = tmp_path / "calls.log", tmp_path / "hook.txt"
    env = fake_commands(tmp_path, calls) | {"FARENSED_NOTIFY": "osascript"}
    hook = f'echo "$FARENSED_JOB_ID $FARENSED_JOB_STATE $FARENSED_OUTPUT_DIR $FARENSED_SUMMARY" > {hook_out}'
    d = daemon("--sleep-guard", "on", "--hook", hook, env=env)
    # When a job is submitted and runs to the end
    (home / "j.toml").write_text(small_job(40, "night"))
    ctl("submit", str(home / "j.toml"))
    guard = wait_for(lambda: _status_daemon(home).get("sleep_guard"), 60, what="status shows the sleep guard")
    wait_for(lambda: (record(home, "j") or {}).get("state") == "done", 90, what="job done")
    wait_for(lambda: hook_out.exists() and "osascript" in calls.read_text(), 10, what="hook and notification")
    stop_daemon(d)
    # Then caffeinate watched exactly the worker's pid (the daemon log names it), and the
    # notification and the hook named the job
    lines = calls.read_text().splitlines()
    caff = [ln for ln in lines if ln.startswith("caffeinate ")]
    log = [json.loads(ln) for ln in (home / "logs" / "farensed.jsonl").read_text().splitlines()]
    [worker] = [e["pid"] for e in log if e["event"] == "worker_started"]
    assert caff == [f"caffeinate -i -w {worker}"] and guard == f"caffeinate -i -w {worker}"
    note = [ln for ln in lines if ln.startswith("osascript ")][0]
    assert note.startswith('osascript -e display notification "trained; results in')
    assert 'with title "farensed: j done"' in note
    out = home / "checkpoints" / "j"
    assert hook_out.read_text().split() == ["j", "done", str(out), str(out / "training_summary.json")]


def test_a_full_disk_pauses_the_job_with_a_reason_and_resume_finishes_it(home, daemon):
    # Given a daemon whose worker finds no free disk before its step-4 checkpoint
    daemon(env={"FARENSED_FAULTS": "disk_full@4"})
    (home / "full.toml").write_text(small_job(8, "full", cadence={"checkpoint_every": 4}))
    ctl("submit", str(home / "full.toml"))
    # When it reaches the checkpoint, Then the job is paused, saying why, and nothing half-written
    rec = wait_for(lambda: (r := record(home, "full")) and r["state"] == "paused" and r, 90, what="paused")
    assert "no disk space" in rec["reason"] and "0 B free, a checkpoint of" in rec["reason"]
    assert rec["paused_by"] == "disk"
    assert not list((home / "checkpoints" / "full").glob("*checkpoint_epoch0_step4*"))
    # And once space is back, resume runs it to the end
    ctl("resume", "full")
    wait_for(lambda: (record(home, "full") or {}).get("state") == "done", 90, what="done after resume")


@pytest.mark.parametrize("folder", ["spool", "spool/queued", "spool/jobs", "spool/requests", "."])
def test_the_daemon_refuses_a_home_or_spool_folder_other_users_can_write(home, folder):
    # Given the home, the spool or one of its folders writable by every user (queued/ holds what runs,
    # jobs/ says which folder a job writes, requests/ what is done to it)
    writable = home / folder
    writable.mkdir(parents=True, exist_ok=True)
    writable.chmod(0o777)
    try:
        # When the daemon starts
        cp = subprocess.run([PY, "-m", "farensed.daemon.main", "run", "--once"], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    finally:
        writable.chmod(0o755)
    # Then it refuses, naming the folder and the fix, in one line
    where = writable.resolve() if folder == "." else writable
    assert cp.returncode == 1
    assert f"{where}: writable by other users" in cp.stderr and f"chmod go-w {where}" in cp.stderr
    assert "Traceback" not in cp.stderr


def test_a_symlinked_job_file_is_rejected_unread_with_a_reason(home, tmp_path):
    target = tmp_path / "elsewhere.toml"
    target.write_text(small_job(2, "link"))
    (home / "spool").mkdir()
    (home / "spool" / "link.toml").symlink_to(target)
    cp = subprocess.run([PY, "-m", "farensed.daemon.main", "run", "--once"], cwd=REPO, capture_output=True,
                        text=True, timeout=60)
    assert cp.returncode == 0, cp.stderr
    assert record(home, "link")["state"] == "rejected"
    assert "is a symbolic link" in (home / "spool" / "rejected" / "link.toml.error.txt").read_text()
    assert (home / "spool" / "rejected" / "link.toml").is_symlink() and target.read_text() == small_job(2, "link")


def test_a_job_file_of_another_user_is_refused():
    st = os.stat_result((stat.S_IFREG | 0o644, 0, 0, 1, 4242, 4242, 10, 0, 0, 0))
    assert ownership_problem(Path("spool/x.toml"), st, uid=1000) == (
        "spool/x.toml: owned by uid 4242, not by the daemon's user 1000")
    mine = os.stat_result((stat.S_IFREG | 0o644, 0, 0, 1, 1000, 1000, 10, 0, 0, 0))
    assert ownership_problem(Path("spool/x.toml"), mine, uid=1000) is None


def test_battery_policy_pauses_on_battery_and_resumes_on_ac():
    assert battery_action(True, battery=True, running=True, battery_paused=False) == "pause"
    assert battery_action(True, battery=False, running=False, battery_paused=True) == "resume"
    assert battery_action(True, battery=None, running=True, battery_paused=False) is None  # no battery
    assert battery_action(False, battery=True, running=True, battery_paused=False) is None  # setting off
    assert battery_action(True, battery=True, running=False, battery_paused=True) is None


def test_notification_commands_and_the_sleep_guard_setting():
    assert notification_command('say "hi"', "done", "osascript") == [
        "osascript", "-e", 'display notification "done" with title "say \\"hi\\""']
    assert notification_command("t", "m", "notify-send") == ["notify-send", "--app-name=farensed", "t", "m"]
    assert notification_command("t", "m", "off") is None
    assert sleep_guard_wanted("on") and not sleep_guard_wanted("off")
