"""farensectl continue with the real daemon and the tiny model: a new job from the parent's adapters
(and optimizer state), exact resume inside it, its lineage shown and its plots counting on."""

from __future__ import annotations

import json
import os
import subprocess

import numpy as np
from safetensors.numpy import load_file

from conftest import PY, REPO, ctl, record, small_job
from farensed.host.blas import worker_env


def run_once(env: dict | None = None) -> None:
    cp = subprocess.run([PY, "-m", "farensed.daemon.main", "run", "--once"], cwd=REPO, capture_output=True,
                        text=True, timeout=300, env={**os.environ, **worker_env(), **(env or {})})
    assert cp.returncode == 0, cp.stderr[-2000:]


def rows(home, job: str) -> list[dict]:
    return [json.loads(x) for x in (home / "checkpoints" / job / "metrics.jsonl").read_text().splitlines()]


def test_continue_starts_from_the_parent_resumes_exactly_and_shows_its_lineage(home, tmp_path):
    # Given a finished job
    job = small_job(8, name="parent", training={"learning_rate": 1e-3}, evaluate={"probe": 8, "examples": 8})
    (tmp_path / "p.toml").write_text(job)
    parent = ctl("submit", str(tmp_path / "p.toml")).stdout.split()[-1]
    run_once()
    assert record(home, parent)["state"] == "done"
    # When it is continued twice for 8 more steps, the first killed (SIGKILL) as its step 6 starts
    out = ctl("continue", parent, "--steps", "8").stdout
    first = out.split()[-1]
    assert "its steps count on from 8" in out and "the parent's optimizer state" in out
    run_once({"FARENSED_FAULTS": "kill@6"})
    second = ctl("continue", parent, "--steps", "8").stdout.split()[-1]
    run_once()
    assert first != second and record(home, first)["state"] == record(home, second)["state"] == "done"
    assert record(home, first)["restarts"] == 1 and record(home, second)["restarts"] == 0
    # Then the resumed one ends with the same adapters, bit for bit, as the undisturbed one
    a = load_file(str(home / "checkpoints" / first / "adapters.safetensors"))
    b = load_file(str(home / "checkpoints" / second / "adapters.safetensors"))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    # its first loss is the parent's last (the same adapters on the same validation set), and training
    # goes on from there rather than from the base model
    p, c = rows(home, parent), rows(home, first)
    p_val = [r["val_loss"] for r in p if r["kind"] == "eval"]
    c_val = [r["val_loss"] for r in c if r["kind"] == "eval"]
    assert abs(c_val[0] - p_val[-1]) < 1e-5 * max(1.0, p_val[-1]) and p_val[0] - p_val[-1] > 0.1
    p_train = [r["train_loss"] for r in p if r["kind"] == "train"]
    c_train = [r["train_loss"] for r in c if r["kind"] == "train"]
    assert c_train[0] < 0.6 * p_train[0] and abs(c_train[0] - p_train[-1]) < 0.4 * p_train[-1]
    log = (home / "checkpoints" / second / "worker.log").read_text()
    loaded = [json.loads(x) for x in log.splitlines() if '"init_adapters_loaded"' in x]
    assert loaded and loaded[0]["optimizer"] == "carried over" and loaded[0]["parent"] == parent
    # two runs of the same job scored the same questions
    asked = [[json.loads(x)["question"] for x in (home / "checkpoints" / j / "answers.jsonl").read_text().splitlines()]
             for j in (first, second)]
    assert asked[0] and asked[0] == asked[1]
    # the lineage in status, report and compare; the plots count the steps on from the parent's
    assert f"lineage: continued from job {parent} (final adapters)" in ctl("status", first).stdout
    ctl("report", first)
    assert f"| continued from | {parent} (final, after step 8) |" in (home / "checkpoints" / first / "report.md"
                                                                        ).read_text()
    assert "continued from" in ctl("compare", first, second, "--no-answers").stdout
    from farensed.results.plots import ancestors
    from farensed.results.rundata import load_run

    data = load_run(home / "checkpoints" / first)
    assert data.offset == 8 and [r.run_dir.name for r in ancestors(data)] == [parent]
    assert (home / "checkpoints" / first / "plots" / "loss_curves.png").stat().st_size > 0


def test_continue_refuses_what_cannot_be_continued_in_one_line_and_queues_nothing(home, tmp_path):
    (tmp_path / "p.toml").write_text(small_job(4, name="parent"))
    parent = ctl("submit", str(tmp_path / "p.toml")).stdout.split()[-1]
    # not finished (queued: no daemon has taken it yet)
    cp = ctl("continue", parent, check=False)
    assert cp.returncode != 0 and "is submitted (waiting for the daemon), not finished" in cp.stderr
    run_once()
    cases = {
        ("--set", "lora.rank=16"): "lora.rank: 16 does not match the adapters' rank [8]",
        ("--adapters", "step:999"): "no checkpoint at step 999",
        ("--adapters", "last"): 'expected "final", "best" or "step:S"',
        ("--epochs", "1", "--steps", "2"): "give --epochs or --steps, not both",
    }
    for args, said in cases.items():
        cp = ctl("continue", parent, *args, check=False)
        assert cp.returncode != 0 and said in cp.stderr, (args, cp.stderr)
        assert "Traceback" not in cp.stderr
    cp = ctl("continue", "nosuchjob", check=False)
    assert cp.returncode != 0 and "no job 'nosuchjob'" in cp.stderr
    # an [init] folder that holds no adapters is refused by validate, naming the key
    (tmp_path / "empty").mkdir()
    (tmp_path / "i.toml").write_text(small_job(4, name="x") + f'[init]\npath = "{tmp_path / "empty"}"\n')
    cp = ctl("validate", str(tmp_path / "i.toml"), check=False)
    said = cp.stderr + cp.stdout
    assert cp.returncode != 0 and "init.path" in said and "not an adapter folder" in said
    # nothing was queued by any of them
    assert sorted(p.name for p in (home / "spool" / "jobs").glob("*.json")) == [f"{parent}.json"]
    assert not list(home.joinpath("spool").glob("*.toml"))
