"""Answer scores where a user reads them: report (chart and table), status JOB, compare and watch,
on run folders written from the pydantic models (no training)."""

from __future__ import annotations

import time

import pytest
from test_results_report import PNG_SIGNATURE, write_run

from conftest import ctl
from farensed.core.atomic import atomic_write_json
from farensed.core.formats import (
    AnswerScores,
    LiveProgress,
    ScoredQuestion,
    ScoringPlan,
    TargetAnswer,
    TargetScore,
    TrainingState,
    TrainingSummary,
    read_model,
)
from farensed.core.spool import records

REF = "As cores do Farense são o preto e o branco."


def _row(kind: str, index: int, base: str, final: str, reference: str | None = REF) -> ScoredQuestion:
    def ans(text, f1):
        return TargetAnswer(answer=text, exact_match=None if reference is None else float(f1 == 1.0),
                            f1=None if reference is None else f1)
    return ScoredQuestion(kind=kind, index=index, source=f"data/test.jsonl:{index + 1}", question=f"Pergunta {index}?",
                          reference=reference, answers={"base": ans(base, 0.0), "best": ans(base, 0.0),
                                                        "final": ans(final, 1.0)}, seconds=0.1)


def _scored(run, summary: bool = True):
    rows = [_row("held_out", 0, "Faro.", REF), _row("held_out", 1, "Olá", REF),
            _row("prompt", 0, "nada", "Sou um assistente.", reference=None)]
    (run / "answers.jsonl").write_text("".join(r.model_dump_json() + "\n" for r in rows))
    state = read_model(run / "training_state.json", TrainingState)
    plan = ScoringPlan(examples=2, available=52, prompts=1, data="data/test.jsonl", estimated_seconds=0.3)
    atomic_write_json(run / "training_state.json", state.model_copy(update={"scoring": plan}))
    if summary:
        means = {"base": TargetScore(exact_match=0.0, f1=0.0), "best": TargetScore(exact_match=0.0, f1=0.0),
                 "final": TargetScore(exact_match=1.0, f1=1.0)}
        atomic_write_json(run / "training_summary.json", TrainingSummary(
            job="plotted", model="m", steps=60, epochs=1.0, final_train_loss=1.0, final_val_loss=1.5,
            best_val_loss=1.4, best_step=50, seconds=30.0, tokens=6000, tokens_per_sec=200.0, trainable_parameters=1,
            total_parameters=2, downshifts=[], restarts=0, skipped_nonfinite_steps=0, truncated_examples=0,
            answers=[], adapters=str(run), best_adapters=str(run / "adapters"), load_seconds=2.5,
            compile_seconds=31.0, scores=AnswerScores(data="data/test.jsonl", examples=2, available=52, means=means,
                                                      seconds=0.3)))
    return rows


@pytest.fixture
def run(tmp_path):
    return write_run(tmp_path / "checkpoints" / "plotted", status="done", step=60)


def test_report_draws_the_scores_chart_and_the_answers_table(run, tmp_path):
    # Given a scored run
    _scored(run)
    # When the report is written
    ctl("report", str(run), "--home", str(tmp_path))
    # Then the chart is a real PNG and the page has the means, the chart and a row per question, prompts first
    chart = run / "plots" / "answer_scores.png"
    assert chart.read_bytes()[:8] == PNG_SIGNATURE and chart.stat().st_size > 10_000
    page = (run / "report.md").read_text()
    assert "## Answer scores" in page and "![answer scores](plots/answer_scores.png)" in page
    assert "held-out    base F1 0.00, exact 0% | best F1 0.00, exact 0% | final F1 1.00, exact 100%" in page
    table = [line for line in page.splitlines() if line.startswith("| Pergunta")]
    assert table[0].startswith("| Pergunta 0? | - | nada | nada | Sou um assistente. |")
    assert table[1] == f"| Pergunta 0? | {REF} | Faro. (F1 0.00) | Faro. (F1 0.00) | {REF} (F1 1.00) |"
    assert "| compile time | 0m31s |" in page and "| load time | 0m02s |" in page


def test_status_job_shows_the_means_and_while_scoring_the_answers_so_far(run, tmp_path):
    # Given a job record pointing at a run that is still scoring (no summary yet, 3 of 3 answered)
    jobs = tmp_path / "spool" / "jobs"
    jobs.mkdir(parents=True)
    records.save(jobs, records.JobRecord(id="plotted", file_name="plotted.toml", state="running", since=1.0, seq=1,
                                         submitted_at=1.0, started_at=2.0, output_dir=str(run)))
    _scored(run, summary=False)
    atomic_write_json(run / "progress.json", LiveProgress(
        worker_pid=1, step=60, total_steps=60, epoch=0, micro_batch=2, grad_accumulation=4, phase="scoring",
        scored=3, to_score=3, eta_seconds=0.0, updated_at=time.time()))
    out = ctl("status", "plotted", "--home", str(tmp_path)).stdout
    assert "phase: scoring" in out and "scoring: 3 of 3 questions answered so far" in out
    assert "final F1 1.00, exact 100%" in out
    # When the run is done, Then the summary's means are shown
    _scored(run)
    out = ctl("status", "plotted", "--home", str(tmp_path)).stdout
    assert "answer scores on 2 of 52 held-out questions (data/test.jsonl), 0.3s:" in out
    # And the job's prompt as each model answered it (no F1: the data does not hold that question)
    assert "  Q: Pergunta 0?\n    base: nada\n    best: nada\n    final: Sou um assistente.\n" in out


def test_watch_counts_the_scoring_down(run, tmp_path):
    atomic_write_json(run / "progress.json", LiveProgress(
        worker_pid=1, step=60, total_steps=60, epoch=0, micro_batch=2, grad_accumulation=4, phase="scoring",
        scored=4, to_score=20, eta_seconds=8.0, updated_at=time.time()))
    out = ctl("watch", str(run), "--once", "--home", str(tmp_path)).stdout
    assert "Scoring" in out and "4/20 questions x base, best, final, about 0m08s left" in out


def test_compare_shows_answer_scores_side_by_side(run, tmp_path):
    other = write_run(tmp_path / "checkpoints" / "other", status="done", step=60)
    _scored(run)
    out = ctl("compare", str(run), str(other), "--no-answers", "--home", str(tmp_path)).stdout
    lines = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
             for line in out.splitlines() if line.count("│") == 4}
    assert lines["answer F1 final"] == ["1.000", "-"] and lines["answer F1 base"] == ["0.000", "-"]
    assert lines["exact match final"] == ["100%", "-"] and lines["scored questions"] == ["2", "-"]
    assert lines["compile time"][0] == "0m31s"


def test_compare_says_when_the_question_sets_differ_and_compares_only_the_shared_ones(run, tmp_path):
    # Given two scored runs whose held-out questions overlap in one ("Pergunta 1?"): the first answers
    # it right with the final adapters, the second wrong, each right on its own other question
    other = write_run(tmp_path / "checkpoints" / "other", status="done", step=60)
    _scored(run)  # Pergunta 0? and Pergunta 1?, final right on both
    rows = [_row("held_out", 1, "Olá", "Faro."), _row("held_out", 2, "Faro.", REF)]
    rows[0].answers["final"] = rows[0].answers["final"].model_copy(update={"f1": 0.0, "exact_match": 0.0})
    (other / "answers.jsonl").write_text("".join(r.model_dump_json() + "\n" for r in rows))
    state = read_model(other / "training_state.json", TrainingState)
    plan = ScoringPlan(examples=2, available=52, prompts=0, data="data/test.jsonl", estimated_seconds=0.3)
    atomic_write_json(other / "training_state.json", state.model_copy(update={"scoring": plan}))
    # When they are compared
    out = ctl("compare", str(run), str(other), "--no-answers", "--home", str(tmp_path)).stdout
    # Then the table says the sets differ and scores both on the one question they share
    assert out.startswith("note: the jobs' held-out question sets differ (2, 2 questions, 1 answered by all): the"
                          " answer scores compare only the 1 shared questions\n")
    lines = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
             for line in out.splitlines() if line.count("│") == 4}
    assert lines["answer F1 final"] == ["1.000", "0.000"] and lines["scored questions"] == ["1", "1"]
    assert lines["answered in all"] == ["2", "2"]
