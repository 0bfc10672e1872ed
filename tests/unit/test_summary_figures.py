"""The micro-batch a run shows is the mean over its steps, not the longest steps' (issue 23 item 6):
under a tight budget the state's micro_batch is 1 while most steps run wider."""

from __future__ import annotations

import pytest

from farensed.core.atomic import append_line, atomic_write_json
from farensed.core.formats import MetricsRow, TrainingState
from farensed.results.rundata import load_run
from farensed.results.summary_table import figures, rows, split_rows

# the demo under budget_gb = 1.6 x the peak of micro-batch 1 on its longest step, as its metrics.jsonl says
WINDOWS = ["2x4:8", "2x4:6 1x8:2", "2+1+1+1+1+1+1:4 2x4:4", "1x6:4 1x8:4"]


def run_folder(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    atomic_write_json(run / "training_state.json", TrainingState(status="running", step=32, total_steps=32,
                      micro_batch=1, grad_accumulation=8, effective_batch=8))
    for i, splits in enumerate(WINDOWS):
        row = MetricsRow(kind="train", step=8 * (i + 1), epoch=0, micro_batch=1, grad_accumulation=8,
                         tokens_seen=100 * i, elapsed=float(i), splits=splits, tokens_per_sec=500.0)
        append_line(run / "metrics.jsonl", row.model_dump_json())
    return run


def test_splits_are_read_as_written():
    assert split_rows("2x4") == [2, 2, 2, 2] and split_rows("2+1+1") == [2, 1, 1] and split_rows("4+4") == [4, 4]


def test_the_mean_micro_batch_counts_every_step(tmp_path):
    data = load_run(run_folder(tmp_path))
    f = figures(data)
    # 18 steps of 2x4, 6 of 1x8, 4 of 2+1x6 (8/7 each), 4 of 1x6
    assert f["micro-batch, mean over steps"] == pytest.approx((18 * 2 + 6 + 4 * 8 / 7 + 4) / 32)
    assert f["longest steps' micro-batch x acc"] == "1x8"
    shown = dict(rows(data))
    assert shown["micro-batch, mean over steps"] == "1.58" and shown["step tokens/s"] == "500"
