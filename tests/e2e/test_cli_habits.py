"""The CLI as a new user meets it (issue 23 item 9): --home before the verb, suggestions for a mistyped
verb or job id, readable logs."""

from __future__ import annotations

import json
import os
import subprocess

from conftest import FARENSECTL, ctl
from dashboard_support import write_record

LOG = [{"run_dir": "/r", "job": "a", "train": 190, "source": "/d/train.jsonl", "event": "data_loaded",
        "level": "info", "timestamp": "2026-12-02T17:42:07.643753Z"},
       {"run_dir": "/r", "job": "a", "step": 8, "reason": "no space left", "event": "paused",
        "level": "warning", "timestamp": "2026-12-02T17:42:09.000000Z"}]


def run_folder(home):
    run = home / "checkpoints" / "a"
    run.mkdir(parents=True)
    text = "".join(json.dumps(e) + "\n" for e in LOG) + "Traceback (most recent call last):\n"
    (run / "worker.log").write_text(text + '{"event": "half-writ')  # a last line still being written
    write_record(home, "alpha", output=run)
    return run


def test_home_before_the_verb_is_the_same_as_after(home, tmp_path):
    write_record(home, "alpha")
    env = {k: v for k, v in os.environ.items() if k != "FARENSED_HOME"}
    for args in (["--home", str(home), "status"], ["status", "--home", str(home)]):
        cp = subprocess.run([FARENSECTL, *args], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
        assert cp.returncode == 0 and "alpha" in cp.stdout, (args, cp.stderr)


def test_a_mistyped_verb_or_job_id_gets_a_suggestion(home):
    write_record(home, "alpha")
    cp = ctl("stauts", check=False)
    assert cp.returncode == 2 and "did you mean status?" in cp.stderr
    for verb in ("logs", "report", "cancel"):
        cp = ctl(verb, "alpah", check=False)
        assert cp.returncode == 1 and "did you mean alpha?" in cp.stderr, (verb, cp.stderr)
        assert "Traceback" not in cp.stderr


def test_logs_are_readable_by_default_raw_with_json_and_tail_cuts(home):
    run_folder(home)
    out = ctl("logs", "alpha").stdout.splitlines()
    assert len(out) == 3  # the line still being written is not shown
    assert out[0].endswith("  data_loaded  train=190 source=/d/train.jsonl") and out[0][:2] == "20"
    assert '  paused [warning]  step=8 reason="no space left"' in out[1]
    assert out[2] == "Traceback (most recent call last):"
    raw = ctl("logs", "alpha", "--json", "--tail", "2").stdout.splitlines()
    assert json.loads(raw[0]) == LOG[1] and raw[1].startswith("Traceback")
    assert ctl("logs", "alpha", "-n", "1").stdout == "Traceback (most recent call last):\n"
