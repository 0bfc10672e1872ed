"""The status table fits 80 columns and says each running job's phase (issue 23 item 9)."""

from __future__ import annotations

import os
import subprocess
import time

from conftest import FARENSECTL, REPO
from dashboard_support import write_record
from farensed.core.atomic import atomic_write_json
from farensed.core.formats import LiveProgress

REASON = "out of memory at step 120 even at micro-batch 1 with gradient checkpointing: lower max_seq_length"


def test_status_fits_80_columns_with_a_phase_column(home):
    run = home / "checkpoints" / "a-rather-long-job-name-for-a-table"
    run.mkdir(parents=True)
    atomic_write_json(run / "progress.json", LiveProgress(
        worker_pid=1, step=1200, total_steps=1416, epoch=2, train_loss=1.234, val_loss=1.456, tokens_per_sec=1955.0,
        micro_batch=4, grad_accumulation=2, eta_seconds=3725, phase="evaluating", updated_at=time.time()))
    write_record(home, "a-rather-long-job-name-for-a-table", state="running", output=run)
    write_record(home, "failed-one", state="failed", reason=REASON)
    write_record(home, "done-one", state="done", output=home / "checkpoints" / "done-one")
    cp = subprocess.run([FARENSECTL, "status"], capture_output=True, text=True, cwd=REPO, timeout=60,
                        env={**os.environ, "COLUMNS": "80"})
    assert cp.returncode == 0, cp.stderr
    lines = cp.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), "\n".join(lines)
    head = lines[1].split()
    assert head[:4] == ["id", "state", "phase", "step"] and "step tok/s" in lines[1]
    running = next(line for line in lines if line.startswith("a-rather-long"))
    assert "running" in running and " eval " in running and "1200/1416" in running and "1955" in running
    assert REASON[:30] in cp.stdout  # the reason is cut to fit, not dropped
    assert len(lines) <= 2 + 3 * 2  # at most one line of its own for a job's note
