"""farensectl logs JOB -f follows the worker's log while the job runs and returns when it ends."""

from __future__ import annotations

import subprocess

from conftest import FARENSECTL, REPO, ctl, record, small_job, wait_for


def test_logs_follow_streams_until_the_job_ends(home, daemon):
    # Given a daemon running a job
    daemon()
    (home / "lf.toml").write_text(small_job(20, "lf"))
    ctl("submit", str(home / "lf.toml"))
    wait_for(lambda: (record(home, "lf") or {}).get("state") == "running", 60, what="running")
    # When logs -f is started while the job runs
    cp = subprocess.run([FARENSECTL, "logs", "lf", "-f"], capture_output=True, text=True, cwd=REPO, timeout=120)
    # Then it returned by itself once the job was done, having printed the whole log
    assert cp.returncode == 0 and record(home, "lf")["state"] == "done"
    assert "  job_done  " in cp.stdout and "  data_loaded  " in cp.stdout
