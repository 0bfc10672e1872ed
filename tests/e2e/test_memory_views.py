"""status JOB, watch and report show the budget, the memory model, the checkpointing choice and
why, each step's split and the peak against the budget (run folders from the models, no training)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from conftest import ctl, small_job
from farensed.core.atomic import atomic_write_json
from farensed.core.formats import (
    Downshift,
    LiveProgress,
    MemoryMode,
    MemoryModel,
    MetricsRow,
    ProbePoint,
    TrainingState,
)
from farensed.core.spool import records

GB = 1024**3
MODEL = MemoryModel(
    key="k", rows_cap=4, rows_floor=1, max_seq_length=512, budget_bytes=12 * GB, usable_bytes=int(11.4 * GB),
    grad_checkpoint=True, probe_seconds=3.2,
    why="checkpointing on: an epoch takes an estimated 41.0 s with it, against 52.5 s without it",
    modes=[MemoryMode(grad_checkpoint=False, base_bytes=4.3 * GB, per_token_bytes=8.2 * 1024**2,
                      points=[ProbePoint(rows=1, width=512, peak_bytes=int(8.5 * GB))]),
           MemoryMode(grad_checkpoint=True, base_bytes=4.3 * GB, per_token_bytes=1.9 * 1024**2)])


def _rows() -> list[MetricsRow]:
    return [MetricsRow(kind="train", step=s, epoch=0, micro_batch=4, grad_accumulation=2, tokens_seen=s * 900,
                       elapsed=s * 0.5, train_loss=2.0, peak_memory_gb=10.7 + s / 100, grad_checkpoint=True,
                       splits="4+4:7 3+3+2:2 2x4:1") for s in range(10, 40, 10)]


@pytest.fixture
def run(tmp_path) -> Path:
    run = tmp_path / "checkpoints" / "mem"
    run.mkdir(parents=True)
    job = small_job(name="mem", steps=60).replace("[cadence]", "[memory]\nbudget_gb = 12\n\n[cadence]")
    (run / "job.toml").write_text(job)
    (run / "metrics.jsonl").write_text("".join(r.model_dump_json() + "\n" for r in _rows()))
    down = Downshift(step=12, from_micro_batch=4, to_micro_batch=2, grad_checkpoint=True, source="budget",
                     reason="peak memory 12.02 GB over the budget 12 GB at micro-batch 4 x 512 tokens", at=time.time(),
                     tokens=2048, width=512)
    atomic_write_json(run / "training_state.json", TrainingState(
        status="running", step=30, total_steps=60, micro_batch=4, grad_accumulation=2, effective_batch=8,
        grad_checkpoint=True, downshifts=[down], memory_model=MODEL, updated_at=time.time() - 5))
    atomic_write_json(run / "progress.json", LiveProgress(
        worker_pid=1, step=30, total_steps=60, epoch=0, active_memory_gb=4.5, peak_memory_gb=11.1, budget_gb=12.0,
        micro_batch=4, grad_accumulation=2, grad_checkpoint=True, split=[3, 3, 2], updated_at=time.time()))
    jobs = tmp_path / "spool" / "jobs"
    jobs.mkdir(parents=True)
    records.save(jobs, records.JobRecord(id="mem", file_name="mem.toml", state="running", since=1.0, seq=1,
                                         submitted_at=1.0, started_at=2.0, output_dir=str(run)))
    return run


def test_status_of_a_job_says_the_budget_the_model_the_choice_and_why_and_the_split(run, tmp_path):
    out = ctl("status", "mem", "--home", str(tmp_path)).stdout
    for text in ("budget 12 GB (11.4 GB planned)", "without checkpointing: measured 512 tokens 8.5 GB; above those"
                 " + 8.2 MB/token",
                 "with checkpointing: peak ~ 4.3 GB + 1.9 MB/token", "checkpointing on: an epoch takes an estimated",
                 "measured in 3.2 s", "split: 3+3+2", "peak_memory_gb: 11.1", "budget_gb: 12.0"):
        assert text in out, text


def test_watch_shows_the_memory_plan_and_the_last_split(run, tmp_path):
    out = ctl("watch", "mem", "--once", "--home", str(tmp_path)).stdout
    for text in ("Memory plan", "budget 12 GB", "checkpointing on", "Last step split  3+3+2", "11.10 GB peak"):
        assert text in out, text


def test_report_has_the_memory_plan_the_peak_against_the_budget_and_the_split_distribution(run, tmp_path):
    ctl("report", "mem", "--home", str(tmp_path))
    page = (run / "report.md").read_text()
    assert "## Memory" in page and "checkpointing on: an epoch takes an estimated 41.0 s" in page
    assert "- peak 11.000 GB against the budget 12 GB (92%)" in page
    assert "| 4+4 | 21 |" in page and "| 3+3+2 | 6 |" in page and "| 2x4 | 3 |" in page
    assert "step 12: micro-batch 4 -> 2 (budget: peak memory 12.02 GB over the budget" in page
