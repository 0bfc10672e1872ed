"""scripts/demo after a Ctrl-C (issue 23 item 9): the interrupted run says how to go on, and the next run
takes up the unfinished job from its last checkpoint instead of ending in a traceback."""

from __future__ import annotations

import os
import signal
import subprocess

from conftest import PY, REPO, record, small_job, wait_for


def demo(home, job, **kw) -> subprocess.Popen:
    """farensed.demo.run as scripts/demo runs it, in its own session (a terminal's Ctrl-C reaches the group)."""
    return subprocess.Popen([PY, "-m", "farensed.demo.run", "--home", str(home), "--job", str(job)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **kw)


def test_a_demo_rerun_after_ctrl_c_finishes_the_interrupted_job(home):
    job = home / "demo.toml"
    job.write_text(small_job(300, "demo", cadence={"checkpoint_every": 10, "eval_every": 100, "log_every": 5}))
    # Given a demo run interrupted by Ctrl-C once its job has a checkpoint
    first = demo(home, job)
    wait_for(lambda: list((home / "checkpoints" / "demo").glob("checkpoint_*")), 120, what="a checkpoint")
    os.killpg(first.pid, signal.SIGINT)
    out1, _ = first.communicate(timeout=120)
    assert first.returncode == 130, out1[-2000:]
    assert "Traceback" not in out1 and "run scripts/demo again" in out1
    assert record(home, "demo")["state"] != "done"
    # When the demo runs again
    second = demo(home, job)
    out2, _ = second.communicate(timeout=300)
    # Then it took up the same job, which ended done, with no new job beside it and no traceback
    assert second.returncode == 0, out2[-3000:]
    assert "Traceback" not in out2 and "continuing job demo" in out2
    assert record(home, "demo")["state"] == "done" and record(home, "demo-2") is None
    assert "resumed" in (home / "checkpoints" / "demo" / "worker.log").read_text()
