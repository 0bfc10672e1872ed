"""The learning-rate plot starts at step 0, so the warm-up shows (issue 23 item 9): the schedule is
computed from job.toml by the function the worker trains with."""

from __future__ import annotations

from conftest import small_job
from farensed.core import schedule
from farensed.core.atomic import append_line, atomic_write_json
from farensed.core.formats import MetricsRow, TrainingState
from farensed.core.jobfile import parse_job
from farensed.results.plots import lr_plot, schedule_points
from farensed.results.rundata import load_run
from farensed.worker import schedule as worker_schedule


def test_the_plotted_schedule_starts_at_step_0_and_holds_the_logged_rates(tmp_path):
    # Given a run of 20 steps with 5 of warm-up to 5e-3 whose first log row comes after the warm-up
    text = small_job(20, "lr", training={"warmup_steps": 5, "schedule": "cosine"})
    (tmp_path / "job.toml").write_text(text)
    t = parse_job(text).training
    atomic_write_json(tmp_path / "training_state.json", TrainingState(status="done", step=20, total_steps=20,
                      micro_batch=4, grad_accumulation=2, effective_batch=8))
    for step in (8, 16):
        append_line(tmp_path / "metrics.jsonl", MetricsRow(
            kind="train", step=step, epoch=0, micro_batch=4, grad_accumulation=2, tokens_seen=step, elapsed=1.0,
            learning_rate=worker_schedule.learning_rate(t, step, 20)).model_dump_json())
    data = load_run(tmp_path)
    # When the schedule is plotted
    steps, rates = schedule_points(data)
    # Then it runs from step 0 (rate 0) through the warm-up to the end, and every logged rate is on it
    assert steps[:7] == [0, 1, 2, 3, 4, 5, 6] and steps[-1] == 20
    assert rates[0] == 0.0 and rates[1] == 5e-3 / 5 and rates[5] == 5e-3 and rates[6] < 5e-3
    for row in data.trains():
        assert rates[row.step] == row.learning_rate
    assert worker_schedule.learning_rate is schedule.learning_rate  # one schedule, trained and plotted
    png = lr_plot(data, tmp_path / "learning_rate.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
