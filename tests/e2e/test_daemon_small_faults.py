"""Small faults around a real daemon: a torn job record or status.json (the daemon frozen with
SIGSTOP, so it holds the lock but cannot repair them yet), a NUL in a job's name reaching the hook,
a kill while scoring counted once everywhere, and a client probing the lock as a daemon starts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

from conftest import PY, REPO, ctl, record, small_job, stop_daemon, wait_for
from farensed.core.spool import records
from farensed.core.spool.folders import SpoolDirs
from farensed.core.spool.records import JobRecord

TORN = b'{"schema_version": 1, "id": "j", "sta'


def _events(home: Path, name: str) -> list[dict]:
    lines = (home / "logs" / "farensed.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == name]


@contextmanager
def frozen(proc: subprocess.Popen):
    """The daemon stopped (SIGSTOP): alive, holding its lock, doing nothing until the block ends."""
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(proc.pid, signal.SIGCONT)


def _done_job(home: Path, daemon) -> subprocess.Popen:
    d = daemon()
    (home / "j.toml").write_text(small_job(2, "j"))
    ctl("submit", str(home / "j.toml"))
    wait_for(lambda: (record(home, "j") or {}).get("state") == "done", 90, what="j done")
    return d


def test_a_torn_job_record_is_listed_answered_in_one_line_and_written_again_by_the_daemon(home, daemon):
    # Given a running daemon that has finished job j, whose record is then torn
    d = _done_job(home, daemon)
    path = home / "spool" / "jobs" / "j.json"
    with frozen(d):
        path.write_bytes(TORN)
        # When a user lists the jobs and tries the verbs, Then j is still listed, as unreadable
        listed = ctl("list").stdout.splitlines()
        assert [ln.split()[:2] for ln in listed] == [["j", "unreadable"]]
        # And every verb answers in one line that names the file, with no pydantic text
        for verb in ("resume", "cancel", "logs", "retry"):
            cp = ctl(verb, "j", check=False)
            assert cp.returncode == 1 and len(cp.stderr.strip().splitlines()) == 1, (verb, cp.stderr)
            assert f"{path}: not a valid JobRecord: Invalid JSON" in cp.stderr
            assert "pydantic" not in cp.stderr
    # And once the daemon runs on, it writes the record again and keeps the torn bytes aside
    wait_for(lambda: (record(home, "j") or {}).get("state") == "done", 30, what="record written again")
    [aside] = path.parent.glob("j.json.unreadable-*")
    assert aside.read_bytes() == TORN
    assert ctl("list").stdout.split()[:2] == ["j", "done"]
    stop_daemon(d)


def test_a_torn_status_json_says_so_instead_of_a_heartbeat_decades_old(home, daemon):
    # Given a running daemon whose status.json is torn while it cannot rewrite it
    d = _done_job(home, daemon)
    with frozen(d):
        (home / "status.json").write_text('{"schema_version": 2, "daem')
        # When the user asks for the status
        out = ctl("status").stdout
    # Then the daemon line says status.json could not be read (naming the daemon's pid), and the
    # jobs are shown from the spool
    first = out.splitlines()[0]
    assert first.startswith(f"farensed (pid {d.pid}) holds the lock, but its status.json could not be read")
    assert "s old" not in out and out.splitlines()[2].split()[:2] == ["j", "done"]
    stop_daemon(d)


def test_a_nul_in_a_job_name_reaches_the_hook_escaped_and_the_log_says_notified_after(home, daemon, tmp_path):
    # Given a queued job whose record (as an older farensed wrote it) names it with a NUL
    dirs = SpoolDirs(home / "spool")
    dirs.ensure()
    dirs.job_file("queued", "n").write_text(small_job(2, "night"))
    now = time.time()
    records.save(dirs.jobs, JobRecord(id="n", file_name="n.toml", name="night\x00shift", state="queued", since=now,
                                      seq=1, submitted_at=now, output_dir=str(home / "checkpoints" / "n")))
    out = tmp_path / "hook.txt"
    # When the daemon runs it to the end, with a hook
    d = daemon("--hook", f'printf "%s" "$FARENSED_JOB_NAME" > {out}', env={"FARENSED_NOTIFY": "off"})
    wait_for(lambda: (record(home, "n") or {}).get("state") == "done", 90, what="n done")
    # Then the hook ran with the NUL written out, and the log says notified once it had
    wait_for(lambda: _events(home, "job_finished_notified"), 30, what="notified")
    assert out.read_text() == "night\\x00shift"
    [note] = _events(home, "job_finished_notified")
    assert note["commands"] == 1 and note["succeeded"] == 1
    stop_daemon(d)


def test_a_kill_while_scoring_is_one_restart_in_the_record_and_the_summary(home, daemon):
    # Given a job whose worker is killed after its second scored answer
    d = daemon(env={"FARENSED_FAULTS": "kill_in_scoring@2"})
    (home / "s.toml").write_text(small_job(4, "s", evaluate={"examples": 4, "max_tokens": 8}))
    ctl("submit", str(home / "s.toml"))
    # When the daemon restarts it and it ends
    wait_for(lambda: (record(home, "s") or {}).get("state") == "done", 120, what="s done")
    stop_daemon(d)
    # Then the record and the summary count the same one restart
    summary = json.loads((home / "checkpoints" / "s" / "training_summary.json").read_text())
    assert record(home, "s")["restarts"] == summary["restarts"] == 1


PROBE = """
import sys
from pathlib import Path
from farensed.core.spool.lock import holder_pid
path = Path(sys.argv[1])
while True:
    holder_pid(path)
"""


def test_a_client_probing_the_lock_in_a_tight_loop_never_stops_a_daemon_from_starting(home):
    # Given a client asking the lock whether a daemon runs, as fast as it can
    (home / "farensed.lock").touch()
    probe = subprocess.Popen([PY, "-c", PROBE, str(home / "farensed.lock")], cwd=REPO)
    try:
        # When a daemon starts (and ends, --once) ten times meanwhile
        ends = [subprocess.run([PY, "-m", "farensed.daemon.main", "run", "--once"], cwd=REPO, capture_output=True,
                               text=True, timeout=120) for _ in range(10)]
    finally:
        probe.kill()
        probe.wait()
    # Then every start took the lock: none took the probe for a running daemon
    assert [(e.returncode, "already running" in e.stderr) for e in ends] == [(0, False)] * 10
