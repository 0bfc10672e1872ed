"""The scoring phase with real workers on the tiny model: answers.jsonl, the summary's means, a
kill (SIGKILL, then SIGTERM) during scoring resumes scoring and not training, completions data,
the compiling phase, and `farensectl score` as a real subprocess."""

from __future__ import annotations

import json
import signal
import time

import pytest

from conftest import ctl, small_job
from farensed.core.exitcodes import EXIT_OK, EXIT_STOPPED
from farensed.core.formats import LiveProgress, ScoredQuestion, TrainingState, TrainingSummary, read_answers, read_model
from farensed.core.paths import REPO_ROOT
from worker_support import make_run, run_worker, start_worker

SYSTEM = ("És um assistente que responde a perguntas sobre a história do Sporting Clube Farense em português"
          " europeu.")
PROMPTS = ["Qual é a alcunha do Farense?", "Olá, quem és tu?"]  # a question of the data, and one that is not
JOB = small_job(8, evaluate={"examples": 5, "max_tokens": 12},
                generate={"prompts": PROMPTS, "system": SYSTEM, "max_tokens": 12})


def _events(run, name: str) -> list[dict]:
    lines = (run / "worker.log").read_text().splitlines()
    return [e for e in (json.loads(line) for line in lines if line.startswith("{")) if e.get("event") == name]


def _texts(rows: list[ScoredQuestion]) -> list[tuple]:
    return [(r.kind, r.index, r.question, r.reference, {t: a.answer for t, a in r.answers.items()}) for r in rows]


@pytest.fixture(scope="module")
def scored_run(tmp_path_factory):
    """A finished 8-step run that scored 5 held-out questions and the two prompts."""
    run = make_run(tmp_path_factory.mktemp("scored"), "scored", JOB)
    assert run_worker(run) == EXIT_OK
    return run


def test_a_run_ends_with_scored_answers_of_base_best_and_final(scored_run):
    # Then answers.jsonl has the 5 held-out questions, then the 2 prompts, each answered by the three models
    rows = read_answers(scored_run / "answers.jsonl")
    assert [(r.kind, r.index) for r in rows] == [("held_out", i) for i in range(5)] + [("prompt", 0), ("prompt", 1)]
    assert all(set(r.answers) == {"base", "best", "final"} for r in rows)
    assert all(r.reference and r.source.startswith(str(REPO_ROOT / "data" / "test.jsonl")) for r in rows[:5])
    assert rows[5].reference.startswith("O Farense é conhecido como") and rows[6].reference is None
    assert rows[6].answers["final"].f1 is None and rows[5].answers["final"].f1 is not None
    # And the summary holds their means, the state is done
    summary = read_model(scored_run / "training_summary.json", TrainingSummary)
    s = summary.scores
    assert (s.examples, s.available, s.data) == (5, 52, str(REPO_ROOT / "data" / "test.jsonl"))
    for t in ("base", "best", "final"):
        assert s.means[t].f1 == pytest.approx(sum(r.answers[t].f1 for r in rows[:5]) / 5, abs=1e-4)
        assert s.prompt_means[t].f1 == pytest.approx(rows[5].answers[t].f1, abs=1e-4)
    state = read_model(scored_run / "training_state.json", TrainingState)
    assert state.status == "done" and state.scoring.examples == 5 and state.scoring.prompts == 2
    assert read_model(scored_run / "progress.json", LiveProgress).phase == "done"
    started = _events(scored_run, "scoring_started")
    assert len(started) == 1 and started[0]["estimated_seconds"] > 0 and started[0]["examples"] == 5


def test_base_and_final_answers_are_the_ones_ask_gives(scored_run):
    # Given the prompt rows of answers.jsonl
    rows = {r.question: r for r in read_answers(scored_run / "answers.jsonl") if r.kind == "prompt"}
    # When `farensectl ask` answers the same prompts with the base model (mlx-lm, no adapters) and the final adapters
    for prompt in PROMPTS:
        for flag, target in (("--base", "base"), ("--final", "final")):
            out = ctl("ask", str(scored_run), prompt, flag, "--max-tokens", "12").stdout
            # Then the answers are the same: "base" is the model before fine-tuning
            assert out.strip() == rows[prompt].answers[target].answer, (prompt, target)


def test_summary_time_is_training_only_with_loading_and_compile_apart(scored_run):
    summary = read_model(scored_run / "training_summary.json", TrainingSummary)
    measured = _events(scored_run, "compile_measured")
    assert len(measured) == 1 and measured[0]["seconds"] == pytest.approx(summary.compile_seconds, abs=1e-3)
    assert summary.load_seconds > 0 and summary.compile_seconds >= 0
    assert summary.tokens_per_sec == pytest.approx(summary.tokens / summary.seconds, rel=1e-3)


def test_a_kill_during_scoring_resumes_scoring_not_training(scored_run, tmp_path):
    # Given the same job, SIGKILLed after its 2nd answer, then SIGTERMed after its 4th
    run = make_run(tmp_path, "killed", JOB)
    assert run_worker(run, faults="kill_in_scoring@2,term_in_scoring@4") == -signal.SIGKILL
    state = read_model(run / "training_state.json", TrainingState)
    assert state.status == "scoring" and state.scoring.examples == 5 and state.step == 8
    assert len(read_answers(run / "answers.jsonl")) == 2
    assert run_worker(run, faults="kill_in_scoring@2,term_in_scoring@4") == EXIT_STOPPED
    assert read_model(run / "training_state.json", TrainingState).status == "stopped"
    # When it is started once more
    assert run_worker(run) == EXIT_OK
    # Then the restarts trained nothing: one first step and one run of steps 1-8 in the whole log
    assert len(_events(run, "first_step_done")) == 1
    assert [e["step"] for e in _events(run, "step_report") if e["kind"] == "train"] == [2, 4, 6, 8]
    assert [e["answered"] for e in _events(run, "scoring_resumed")] == [2, 4]
    assert len(_events(run, "scoring_started")) == 1
    # And the answers are exactly those of the uninterrupted run, each question once
    assert _texts(read_answers(run / "answers.jsonl")) == _texts(read_answers(scored_run / "answers.jsonl"))
    summary = read_model(run / "training_summary.json", TrainingSummary)
    assert summary.scores.means == read_model(scored_run / "training_summary.json", TrainingSummary).scores.means


def test_completions_data_is_scored_and_an_empty_prompt_is_said_once(tmp_path):
    # Given completions data whose held-out file has one example with an empty prompt
    data = tmp_path / "data"
    data.mkdir()
    for name in ("train.jsonl", "valid.jsonl", "test.jsonl"):
        with open(REPO_ROOT / "data" / name, encoding="utf-8") as f:
            chats = [json.loads(line)["messages"] for line in f][:12]
        rows = [{"prompt": m[1]["content"], "completion": m[2]["content"]} for m in chats]
        if name == "test.jsonl":
            rows[0]["prompt"] = ""
        (data / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    run = make_run(tmp_path, "completions", small_job(4, top={"data": str(data)}, evaluate={"examples": 20}))
    # When it runs
    assert run_worker(run) == EXIT_OK
    # Then the 11 askable examples are scored, asked as one user turn, and the empty prompt is said once
    rows = read_answers(run / "answers.jsonl")
    assert len(rows) == 11 and all(r.question and r.answers["final"].f1 is not None for r in rows)
    said = _events(run, "questions_unaskable")
    assert len(said) == 1 and said[0]["count"] == 1


def test_status_and_watch_say_compiling_while_the_first_step_compiles(tmp_path):
    # Given a worker held inside its first step
    run = make_run(tmp_path, "compiling", small_job(4))
    p = start_worker(run, faults="hang@1")
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if read_model(run / "progress.json", LiveProgress).phase == "compiling":
                    break
            except Exception:  # not written yet
                pass
            time.sleep(0.1)
        # Then progress.json says so, and watch explains it
        assert read_model(run / "progress.json", LiveProgress).phase == "compiling"
        out = ctl("watch", str(run), "--once").stdout
        assert "compiling" in out
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()


def test_score_verb_scores_a_users_file_with_the_models_asked(scored_run, tmp_path):
    # Given a file of questions the user wrote after training (completions format)
    questions = tmp_path / "mine.jsonl"
    questions.write_text(json.dumps({"prompt": "Que cores usa o Farense?",
                                     "completion": "As cores do Farense são o preto e o branco."},
                                    ensure_ascii=False) + "\n" + json.dumps({"prompt": "Onde fica Faro?",
                                                                             "completion": "No Algarve."}) + "\n")
    # When `farensectl score` runs on it, for the final adapters only, as a table and as JSON
    table = ctl("score", str(scored_run), "--final", "--data", str(questions))
    as_json = ctl("score", str(scored_run), "--base", "--final", "--data", str(questions), "-n", "1", "--json")
    # Then the table shows each question with the final answer and its F1, and the means
    assert "[1/2]" in table.stdout and "[2/2]" in table.stdout and "final:" in table.stdout
    assert "base:" not in table.stdout and "answer scores on 2 of 2 held-out questions" in table.stdout
    assert "scoring 2 of 2 questions" in table.stderr
    rows = [ScoredQuestion.model_validate_json(line) for line in as_json.stdout.splitlines()]
    assert len(rows) == 1 and set(rows[0].answers) == {"base", "final"}
    assert rows[0].reference in ("As cores do Farense são o preto e o branco.", "No Algarve.")


def test_score_verb_says_when_adapters_are_missing(tmp_path):
    run = make_run(tmp_path, "fresh", small_job(4))  # never trained: no adapters yet
    cp = ctl("score", str(run), "--best", check=False)
    assert cp.returncode == 1 and cp.stderr.strip() == f"Error: {run}: the best adapters are not written yet"
