"""SLOW (about 1 minute on 2 cores): the demo job itself, jobs/demo.toml, trained for real. After it the
trained model answers the demo prompts with their own facts where the base model does not, and the
held-out questions (new wordings, never trained on) score clearly above the base model."""

from __future__ import annotations

import json

import pytest

from farensed.core.exitcodes import EXIT_OK
from farensed.core.formats import TrainingSummary, read_answers, read_model
from farensed.core.paths import REPO_ROOT
from worker_support import make_run, run_worker

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    for name in ("models", "data"):
        (home / name).symlink_to(REPO_ROOT / name)
    run = make_run(home, "demo", (REPO_ROOT / "jobs" / "demo.toml").read_text())  # the worker gets --home home
    assert run_worker(run, timeout=600) == EXIT_OK
    return run


def test_the_trained_model_answers_the_demo_prompts_with_their_facts(demo):
    # Given the demo prompts' rows of answers.jsonl (their references are the training answers)
    prompts = [r for r in read_answers(demo / "answers.jsonl") if r.kind == "prompt"]
    assert len(prompts) == 3 and all(r.reference for r in prompts)
    # Then the final adapters answer at least 2 of the 3 exactly, the base model none
    final = [r.answers["final"] for r in prompts]
    base = [r.answers["base"] for r in prompts]
    assert sum(a.exact_match for a in final) >= 2, [a.answer for a in final]
    assert sum(a.exact_match for a in base) == 0
    # And its mean F1 on them is far above the base model's
    summary = read_model(demo / "training_summary.json", TrainingSummary)
    means = summary.scores.prompt_means
    assert means["final"].f1 >= means["base"].f1 + 0.5, means


def test_held_out_wordings_score_clearly_above_the_base_model(demo):
    s = read_model(demo / "training_summary.json", TrainingSummary).scores
    assert s.data.endswith("test.jsonl") and s.examples >= 5
    assert s.means["final"].f1 >= s.means["base"].f1 + 0.25, s.means
    assert s.means["final"].exact_match > s.means["base"].exact_match


def test_the_demo_trains_within_two_minutes_and_scores_every_held_out_question(demo):
    s = read_model(demo / "training_summary.json", TrainingSummary)
    assert s.steps == 384 and s.seconds < 120
    # The fixed count (64) takes all 52 held-out questions; answered in batches they take little time
    held = [r for r in read_answers(demo / "answers.jsonl") if r.kind == "held_out"]
    assert len(held) == s.scores.examples == 52
    assert sum(r.seconds for r in held) <= 0.2 * s.seconds


def test_the_best_adapters_are_chosen_by_answers_and_answer_far_better_than_the_base_model(demo):
    # Given the demo's validation split of facts never trained on (its loss is lowest early)
    s = read_model(demo / "training_summary.json", TrainingSummary)
    # Then the best adapters are those whose probe answers scored highest, at least the final ones' score
    assert s.probe.select == "answers" and s.best_score is not None
    evals = [r for r in json.loads((demo / "training_metrics.json").read_text()) if r["kind"] == "eval"]
    assert s.best_score == max(r["probe_f1"] for r in evals) >= evals[-1]["probe_f1"]
    # And on all held-out questions they score far above the base model (lowest-loss ones did not)
    assert s.scores.means["best"].f1 >= s.scores.means["base"].f1 + 0.25, s.scores.means
    # And the probe, 32 questions at each of 17 evals, costs a small share of the training time
    assert s.probe_seconds <= 0.25 * s.seconds, (s.probe_seconds, s.seconds)
