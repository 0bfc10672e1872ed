"""The answer probe at every eval and comparable scores, with real workers on the tiny model: the
probe's figures in every eval row, the same questions across runs and seeds, the best chosen by
answers (and by validation loss on request), patience ending a job as done through the daemon,
batched answers equal to one-at-a-time ones, `ask -n`, and `farensectl plan`."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from test_daemon import run_once

from conftest import REPO, ctl, record, small_job
from farensed.core.exitcodes import EXIT_OK
from farensed.core.formats import MetricsRow, TrainingState, TrainingSummary, read_answers, read_model
from farensed.core.spool import records
from worker_support import make_run, run_worker, same_bits

TEST = REPO / "data" / "test.jsonl"
JOB = small_job(6, cadence={"eval_every": 2, "checkpoint_every": 2}, evaluate={"examples": 6})
RESEEDED = small_job(6, cadence={"eval_every": 2, "checkpoint_every": 2},
                     evaluate={"examples": 6, "select": "val_loss"}, training={"seed": 1})


def _evals(run: Path) -> list[MetricsRow]:
    rows = [MetricsRow.model_validate(r) for r in json.loads((run / "training_metrics.json").read_text())]
    return [r for r in rows if r.kind == "eval"]


def _events(run: Path, name: str) -> list[dict]:
    lines = (run / "worker.log").read_text().splitlines()
    return [e for e in (json.loads(x) for x in lines if x.startswith("{")) if e.get("event") == name]


def _state(run: Path) -> TrainingState:
    return read_model(run / "training_state.json", TrainingState)


def _asked(run: Path) -> list[tuple]:
    return [(r.kind, r.question, r.reference) for r in read_answers(run / "answers.jsonl")]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same job run twice, and once with another seed choosing by validation loss."""
    tmp = tmp_path_factory.mktemp("probe")
    made = {name: make_run(tmp, name, text) for name, text in (("a", JOB), ("again", JOB), ("reseeded", RESEEDED))}
    for run in made.values():
        assert run_worker(run) == EXIT_OK
    return made


def test_every_eval_row_holds_the_probes_scores_and_cost(runs):
    # Given a finished 6-step run with an eval every 2 steps (and at step 0)
    run = runs["a"]
    evals = _evals(run)
    # Then each eval row has the probe's F1, exact match and time; without a second set, no probe_valid_*
    assert [r.step for r in evals] == [0, 2, 4, 6]
    assert all(0 <= r.probe_f1 <= 1 and 0 <= r.probe_exact <= 1 and r.probe_seconds > 0 for r in evals)
    assert all(r.probe_valid_f1 is None and r.eval_seconds > 0 for r in evals)
    # And every probe is logged with its cost, and the state names the set: 32 of test.jsonl's questions
    scored = _events(run, "probe_scored")
    assert [(e["step"], e["questions"]) for e in scored] == [(0, 32), (2, 32), (4, 32), (6, 32)]
    assert [e["probe_f1"] for e in scored] == [r.probe_f1 for r in evals]
    [only] = _state(run).probe.sets
    assert (only.name, only.field, only.questions, only.data) == ("held_out", "probe", 32, str(TEST))


def test_the_same_questions_in_every_run_and_for_any_seed(runs):
    a, again, reseeded = (_state(runs[n]).probe for n in ("a", "again", "reseeded"))
    # Then the probe asked exactly the same questions in the two runs of the job and in the reseeded one
    assert [s.digest for s in a.sets] == [s.digest for s in again.sets] == [s.digest for s in reseeded.sets]
    # And the final scoring answered the same questions, in the same order, in all three
    assert _asked(runs["a"]) == _asked(runs["again"]) == _asked(runs["reseeded"])
    assert len([k for k, _, _ in _asked(runs["a"]) if k == "held_out"]) == 6
    # And the two runs of the same job scored alike at every eval
    assert [r.probe_f1 for r in _evals(runs["a"])] == [r.probe_f1 for r in _evals(runs["again"])]


def test_the_best_is_chosen_by_answers_and_by_validation_loss_when_asked(runs):
    # Given the run choosing by answers and the one choosing by validation loss
    for name, key in (("a", lambda r: (-r.probe_f1, r.val_loss)), ("reseeded", lambda r: r.val_loss)):
        run, state = runs[name], _state(runs[name])
        evals = _evals(run)
        # Then the best step is the eval the rule ranks first (first of equals), marked in its row
        want = min(evals, key=key)
        assert state.best_step == want.step and [r.step for r in evals if r.best][-1] == want.step
        assert state.probe.select == ("answers" if name == "a" else "val_loss")
        # And adapters/ holds that step's adapters: those of the checkpoint kept as best
        ck = run / f"checkpoint_epoch0_step{want.step}" / "adapters.safetensors"
        if want.step:
            assert same_bits(run / "adapters" / "adapters.safetensors", ck)
    assert _state(runs["a"]).best_score == min(_evals(runs["a"]), key=lambda r: (-r.probe_f1, r.val_loss)).probe_f1


def test_without_a_test_set_the_training_sample_decides_and_the_validation_sample_is_beside_it(tmp_path):
    # Given the sample's train and valid files without its test.jsonl
    data = tmp_path / "data"
    data.mkdir()
    for name in ("train.jsonl", "valid.jsonl"):
        (data / name).write_bytes((REPO / "data" / name).read_bytes())
    run = make_run(tmp_path, "notest", small_job(2, top={"data": str(data)}, cadence={"eval_every": 2},
                                                 evaluate={"examples": 2, "probe": 8}))
    # When it runs
    assert run_worker(run) == EXIT_OK
    # Then each eval scored half of the 8 on training questions (probe_*), half on validation ones (probe_valid_*)
    sets = _state(run).probe.sets
    assert [(s.name, s.field, s.questions) for s in sets] == [("train", "probe", 4), ("valid", "probe_valid", 4)]
    assert all(r.probe_f1 is not None and r.probe_valid_f1 is not None for r in _evals(run))
    assert "training questions" in _state(run).probe.why
    # And status says which set is which (read through the run's job record)
    jobs = tmp_path / "home" / "spool" / "jobs"
    jobs.mkdir(parents=True)
    records.save(jobs, records.JobRecord(id="notest", file_name="notest.toml", state="done", since=1.0, seq=1,
                                         submitted_at=1.0, started_at=2.0, output_dir=str(run)))
    out = ctl("status", "notest").stdout
    assert "probe_f1        4 training questions" in out and "did it learn the facts? - decides the best" in out
    assert "probe_valid_f1  4 validation questions" in out and "facts it never saw?" in out


def test_patience_ends_the_job_as_done_with_the_reason_and_the_best_step(home, tmp_path):
    # Given a job whose probe questions nobody can answer (F1 0 at every eval) and no validation set
    # to break the tie: no eval after step 0 is better, and patience is 2
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.jsonl").write_bytes((REPO / "data" / "train.jsonl").read_bytes())
    asked = tmp_path / "impossible.jsonl"
    asked.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"Pergunta {i}?"},
                                                      {"role": "assistant", "content": "xyzzy"}]}) + "\n"
                             for i in range(4)))
    job = home / "patient.toml"
    job.write_text(small_job(12, top={"data": str(data)}, cadence={"eval_every": 2, "checkpoint_every": 4},
                             evaluate={"data": str(asked), "patience": 2, "examples": 2}))
    # When the daemon runs it
    ctl("submit", str(job))
    assert run_once().returncode == 0
    # Then it ended at step 4 of 12, done, its reason naming patience and the best step
    rec = record(home, "patient")
    assert rec["state"] == "done"
    assert rec["reason"].startswith("stopped early: no better adapters in 2 evals ([evaluate] patience), at step 4"
                                    " of 12; best adapters at step 0, probe F1 0.00")
    run = Path(rec["output_dir"])
    summary = read_model(run / "training_summary.json", TrainingSummary)
    assert summary.steps == 4 and summary.stopped_early == rec["reason"] and summary.best_step == 0
    assert [r.step for r in _evals(run)] == [0, 2, 4] and (run / "checkpoint_epoch0_step4").is_dir()
    # And status shows it
    assert "stopped early: no better adapters in 2 evals" in ctl("status", "patient").stdout


def test_batched_answers_are_the_one_at_a_time_answers(runs):
    import mlx.core as mx
    from mlx_lm import load

    # Given the tiny model, the trained adapters, and all 52 held-out questions as the scoring asks them
    from farensed.core.jobfile import load_job
    from farensed.core.paths import Home
    from farensed.scoring.questions import held_out
    from farensed.worker.answering import batched, one_at_a_time, prompt_ids

    questions = held_out(load_job(runs["a"] / "job.toml"), Home(REPO)).questions
    for adapters in (None, runs["a"]):
        model, tok = load(str(REPO / "models" / "farense-tiny"), adapter_path=str(adapters) if adapters else None)
        prompts = [prompt_ids(tok, q.messages) for q in questions]
        limits = [2 * len(tok.encode(q.reference, add_special_tokens=False)) + 16 for q in questions]
        # When they are answered in batches of 8 and one at a time (greedy)
        together = batched(model, tok, prompts, limits, batch=8)
        alone = one_at_a_time(model, tok, prompts, limits)
        # Then every answer is the same text
        assert together == alone
        assert len(set(alone)) > 5  # real, varied answers, not one repeated sentence
        mx.clear_cache()


def test_ask_n_answers_held_out_questions_together_with_their_references(runs):
    # When the job's first 3 held-out questions and one of the user's are asked at once
    cp = ctl("ask", str(runs["a"]), "Qual é a alcunha do Farense?", "-n", "3", "--max-tokens", "12")
    # Then the user's comes first, then the 3 in the scoring's order, each with its reference and F1
    first_three = [q for k, q, _ in _asked(runs["a"]) if k == "held_out"][:3]
    questions = [line[3:] for line in cp.stdout.splitlines() if line.startswith("Q: ")]
    assert questions == ["Qual é a alcunha do Farense?", *first_three]
    assert cp.stdout.count("   reference: ") == 3 and "(F1 " in cp.stdout
    # And it says which adapters answered: the best, with its step and probe score
    assert f"best adapters (step {_state(runs['a']).best_step}, probe F1 " in cp.stderr


def test_plan_prints_the_figures_keeps_them_for_status_and_leaves_nothing_behind(runs, home):
    # Given the job file run "a" was made from, and the temp folders before
    job = home / "a.toml"
    job.write_bytes((runs["a"] / "job.toml").read_bytes())
    before = set(Path(tempfile.gettempdir()).glob("farensed-plan-*"))
    # When it is planned
    cp = ctl("plan", str(job))
    # Then the steps, evals, measured time and memory and the total with evals and scoring are printed
    out = cp.stdout
    assert "steps: 24 per epoch, 6 in all; 4 evals (validation loss " in out
    assert "measured on this machine (5 real steps): " in out and "peak memory " in out
    assert "final scoring: 6 questions x base, best, final" in out
    assert " + training " in out and " + 4 evals " in out and "(answer probe " in out
    # And no run folder, checkpoint or spool entry is left; only the plan is kept, in the home
    assert set(Path(tempfile.gettempdir()).glob("farensed-plan-*")) == before
    assert not (home / "checkpoints").exists() and not (home / "spool").exists()
    assert len(list((home / "plans").glob("*.json"))) == 1
    # And status of the job made from that file shows the plan beside the actual figures
    jobs = home / "spool" / "jobs"
    jobs.mkdir(parents=True)
    records.save(jobs, records.JobRecord(id="a", file_name="a.toml", state="done", since=1.0, seq=1,
                                         submitted_at=1.0, started_at=2.0, output_dir=str(runs["a"])))
    shown = ctl("status", "a").stdout
    assert "plan (farensectl plan): 6 steps, about " in shown and "\nactual: 6 steps in " in shown


def test_plan_refuses_a_bad_job_without_starting_a_worker(home):
    job = home / "bad.toml"
    job.write_text(small_job(4, training={"batch_size": 0}))
    cp = ctl("plan", str(job), check=False)
    assert cp.returncode == 1 and "training.batch_size" in cp.stderr and "cannot plan it" in cp.stderr
    assert not (home / "plans").exists()
