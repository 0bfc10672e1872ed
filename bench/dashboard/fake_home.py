"""A farensed home holding N jobs in every state, with well-formed run folders: every file is built
from the real on-disk models (JobRecord, TrainingState, LiveProgress, MetricsRow, ScoredQuestion,
TrainingSummary) and written through core/atomic.py, as the daemon and the worker write them.
Nothing is trained: the figures are made up, the formats are not."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

from farensed.core.atomic import append_line, atomic_write_json, atomic_write_text
from farensed.core.formats import (
    ANSWERS,
    JOB_FILE,
    METRICS_JSONL,
    PROGRESS,
    SUMMARY,
    TRAINING_STATE,
    WORKER_LOG,
    LiveProgress,
    MetricsRow,
    ScoredQuestion,
    TargetAnswer,
    TrainingState,
    TrainingSummary,
)
from farensed.core.spool import records
from farensed.core.spool.folders import SpoolDirs

STEPS = 600
STATES = ["running"] + ["queued"] * 30 + ["paused"] * 5 + ["done"] * 50 + ["failed"] * 10 + ["cancelled"] * 4


def job_text(name: str, lr: float) -> str:
    return (f'schema_version = 1\nname = "{name}"\nmodel = "models/farense-tiny"\ndata = "data"\n'
            f"[training]\nlearning_rate = {lr}\nmax_steps = {STEPS}\n[cadence]\neval_every = 50\nlog_every = 10\n")


def metrics(upto: int, rng: random.Random) -> list[MetricsRow]:
    rows = []
    for step in range(0, upto + 1, 10):
        loss = 2.5 * (0.995 ** step) + rng.random() * 0.05
        if step:
            rows.append(MetricsRow(kind="train", step=step, epoch=step // 200, train_loss=loss, learning_rate=2e-4,
                                   tokens_per_sec=900 + rng.random() * 50, steps_per_sec=1.5, active_memory_gb=3.1,
                                   peak_memory_gb=4.2, micro_batch=4, grad_accumulation=2, tokens_seen=step * 800,
                                   elapsed=step / 1.5))
        if step % 50 == 0:
            rows.append(MetricsRow(kind="eval", step=step, epoch=step // 200, val_loss=loss + 0.2, micro_batch=4,
                                   grad_accumulation=2, tokens_seen=step * 800, elapsed=step / 1.5))
    return rows


def answers(n: int) -> list[ScoredQuestion]:
    out = []
    for i in range(n):
        ans = {t: TargetAnswer(answer=f"{t} answer {i}", exact_match=0.0, f1=0.1 * (k + 1))
               for k, t in enumerate(("base", "best", "final"))}
        out.append(ScoredQuestion(kind="held_out", index=i, source=f"data/test.jsonl:{i + 1}",
                                  question=f"Question {i} about SC Farense?", reference=f"Reference {i}.",
                                  answers=ans, seconds=0.5))
    return out


def summary(job_id: str, rows: list[MetricsRow]) -> TrainingSummary:
    return TrainingSummary(job=job_id, model="models/farense-tiny", steps=STEPS, epochs=3, final_train_loss=0.2,
                           final_val_loss=0.4, best_val_loss=0.35, best_step=500, seconds=400, tokens=STEPS * 800,
                           tokens_per_sec=950, trainable_parameters=1000, total_parameters=100000, downshifts=[],
                           restarts=0, skipped_nonfinite_steps=0, truncated_examples=0, answers=[],
                           adapters="adapters.safetensors", best_adapters="adapters")


def run_folder(run: Path, job_id: str, state: str, step: int, rng: random.Random) -> None:
    run.mkdir(parents=True)
    atomic_write_text(run / JOB_FILE, job_text(job_id, 2e-4))
    rows = metrics(step, rng)
    for r in rows:
        append_line(run / METRICS_JSONL, r.model_dump_json())
    status = {"running": "running", "done": "done", "failed": "failed"}.get(state, "stopped")
    state_file = TrainingState(status=status, step=step, total_steps=STEPS, micro_batch=4, grad_accumulation=2,
                               effective_batch=8, updated_at=time.time(), best_val_loss=0.35, best_step=min(step, 500))
    atomic_write_json(run / TRAINING_STATE, state_file)
    atomic_write_json(run / PROGRESS, LiveProgress(worker_pid=1, step=step, total_steps=STEPS, epoch=step // 200,
                                                   train_loss=rows[-1].train_loss, micro_batch=4, grad_accumulation=2,
                                                   phase="training" if state == "running" else "done",
                                                   eta_seconds=(STEPS - step) / 1.5, updated_at=time.time()))
    for s in range(200, step + 1, 200):
        (run / f"checkpoint_epoch{s // 200}_step{s}").mkdir()
    log = "".join(json.dumps({"event": "step_report", "level": "info", "timestamp": "2026-12-01T01:00:00Z",
                              "step": r.step, "train_loss": r.train_loss}) + "\n" for r in rows)
    atomic_write_text(run / WORKER_LOG, log)
    if state == "done":
        for q in answers(30):
            append_line(run / ANSWERS, q.model_dump_json())
        atomic_write_json(run / SUMMARY, summary(job_id, rows))


def make(home: Path, count: int = 100, seed: int = 0) -> list[str]:
    """Fill `home` with `count` jobs (states as STATES, repeated); returns their ids."""
    rng = random.Random(seed)
    dirs = SpoolDirs(home / "spool")
    dirs.ensure()
    now, ids = time.time(), []
    for i in range(count):
        state, job_id = STATES[i % len(STATES)], f"job-{i:03d}"
        started = state not in ("queued",)
        step = {"running": 230, "paused": 120, "cancelled": 60, "failed": 300}.get(state, STEPS)
        out = home / "checkpoints" / job_id
        if started:
            run_folder(out, job_id, state, step, rng)
        else:
            atomic_write_text(dirs.job_file("queued", job_id), job_text(job_id, 2e-4))
        rec = records.JobRecord(id=job_id, file_name=f"{job_id}.toml", name=job_id, state=state, since=now - i,
                                seq=i, submitted_at=now - 3600 + i, started_at=now - 3000 + i if started else None,
                                finished_at=now - 100 + i if state in ("done", "failed", "cancelled") else None,
                                output_dir=str(out), priority=i % 3)
        records.save(dirs.jobs, rec)
        ids.append(job_id)
    return ids
