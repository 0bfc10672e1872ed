"""Sweeps with the real daemon and the tiny model: trials are ordinary jobs, pruned at evals, a winner
named; a SIGKILL of the daemon mid-sweep loses no trial and runs none twice."""

from __future__ import annotations

import json
import os
import signal

from conftest import ctl, record, small_job, wait_for
from farensed.host.blas import worker_env

# Two learning rates (one far too small to learn in 12 steps) x two ranks: a grid of 4, ranked by
# validation loss (on 12 steps of the tiny model it falls steadily; the probe's F1 on so few steps is
# noise). With this seed the grid (Optuna's GridSampler, seeded) runs the good rate first, so successive
# halving prunes the bad ones at their first eval.
SWEEP = """
[sweep]
method = "grid"
pruner = "halving"
metric = "val_loss"
seed = 3
[sweep.params]
"training.learning_rate" = [1e-6, 1e-3]
"lora.rank" = [4, 8]
"""


def sweep_job(name: str = "sw", sweep: str = SWEEP) -> str:
    return small_job(12, name=name, evaluate={"probe": 8, "examples": 8}) + sweep


def trials(home, sweep_id: str) -> list[dict]:
    jobs = [json.loads(p.read_text()) for p in (home / "spool" / "jobs").glob("*.json")]
    return sorted((j for j in jobs if j.get("sweep") == sweep_id), key=lambda j: j["id"])


def study_trials(home, sweep_id: str) -> list[dict]:
    """The study's trials with the job id each was given, straight from Optuna's journal."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(home / "sweeps" / sweep_id / "study.log")))
    study = optuna.load_study(study_name=sweep_id, storage=storage)
    return [{"number": t.number, "state": t.state.name, "job_id": t.user_attrs.get("job_id"), "params": t.params}
            for t in study.trials]


def test_a_sweep_prunes_names_a_winner_and_survives_a_daemon_sigkill(home, daemon, tmp_path):
    env = worker_env()
    (tmp_path / "sw.toml").write_text(sweep_job())
    proc = daemon(env=env)
    sweep_id = ctl("submit", str(tmp_path / "sw.toml")).stdout.split()[-1]
    # Given the second trial is running (the first one ended, the study told)
    wait_for(lambda: (r := record(home, f"{sweep_id}-t2")) and r["state"] == "running", timeout=180,
             what="the second trial running")
    # When the daemon is killed with SIGKILL (its worker too, as a power cut would) and started again
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    proc = daemon(env=env)
    # and again the moment the next trial exists (its job made, not yet started)
    wait_for(lambda: record(home, f"{sweep_id}-t3"), timeout=180, every=0.02, what="the third trial made")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    daemon(env=env)
    wait_for(lambda: (r := record(home, sweep_id)) and r["state"] in ("done", "failed"), timeout=400,
             what="the sweep done")
    assert record(home, sweep_id)["state"] == "done", record(home, sweep_id)["reason"]
    # Then every trial ran once, as its own job, and the study holds each once
    jobs = trials(home, sweep_id)
    assert [j["id"] for j in jobs] == [f"{sweep_id}-t{n}" for n in (1, 2, 3, 4)]
    told = study_trials(home, sweep_id)
    assert sorted(t["job_id"] for t in told) == [j["id"] for j in jobs]
    assert all(t["state"] in ("COMPLETE", "PRUNED") for t in told)
    assert len({json.dumps(t["params"], sort_keys=True) for t in told}) == 4  # the grid, each point once
    # pruned trials say so and keep their checkpoints; both trials of the bad learning rate are among them
    # (halving keeps the top half at each rung: a good trial behind a better one can go too)
    pruned = [j for j in jobs if j["outcome"] == "pruned"]
    assert pruned and all(j["state"] == "done" and "pruned by sweep" in j["reason"] for j in pruned)
    by_id = {t["job_id"]: t for t in told}
    bad = {t["job_id"] for t in told if t["params"]["training.learning_rate"] == 1e-6}
    assert len(bad) == 2 and bad <= {j["id"] for j in pruned}
    for j in pruned:
        assert list((home / "checkpoints" / j["id"]).glob("checkpoint_epoch*_step*"))
    # the winner, with its settings, in the record, status and compare
    table = json.loads((home / "sweeps" / sweep_id / "sweep.json").read_text())
    winner = table["winner"]
    assert by_id[winner]["params"]["training.learning_rate"] == 1e-3
    assert winner in record(home, sweep_id)["reason"]
    shown = ctl("status", sweep_id).stdout
    assert f"winner: {winner}" in shown and "training.learning_rate = 0.001" in shown
    assert "rank" in shown.splitlines()[1] and "val loss" in shown
    from farensed.core.paths import Home
    from farensed.dashboard.sweeps import page

    web = page(Home(home), sweep_id)  # the dashboard's sweep page reads the same sweep.json
    assert web["winner"] == winner and web["metric"] == "val_loss" and len(web["trials"]) == 4
    compared = ctl("compare", sweep_id, "--no-answers").stdout
    assert f"winner: {winner}" in compared and "restarts" in compared  # then the trials side by side
    # the probe asked the same questions in every trial
    digests = {json.dumps([s["digest"] for s in json.loads((home / "checkpoints" / j["id"] / "training_state.json")
                                                            .read_text())["probe"]["sets"]]) for j in jobs}
    assert len(digests) == 1


def test_a_cancelled_sweep_cancels_its_trials_and_makes_no_more(home, daemon, tmp_path):
    (tmp_path / "sw.toml").write_text(sweep_job())
    daemon(env=worker_env())
    sweep_id = ctl("submit", str(tmp_path / "sw.toml")).stdout.split()[-1]
    wait_for(lambda: (r := record(home, f"{sweep_id}-t1")) and r["state"] == "running", timeout=120,
             what="the first trial running")
    ctl("cancel", sweep_id)
    wait_for(lambda: (r := record(home, f"{sweep_id}-t1")) and r["state"] == "cancelled", timeout=120,
             what="the running trial cancelled")
    assert record(home, sweep_id)["state"] == "cancelled"
    assert [j["id"] for j in trials(home, sweep_id)] == [f"{sweep_id}-t1"]
