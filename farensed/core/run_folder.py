"""A run folder (a job's output folder) is prepared from a job file; no mlx here."""

from __future__ import annotations

from pathlib import Path

from farensed.core.atomic import atomic_write_bytes
from farensed.core.formats import JOB_FILE, TrainingState
from farensed.core.jobspec import JobSpec


def prepare_run(job_file: Path, run_dir: Path) -> Path:
    """Create `run_dir` holding an exact copy of the job file as job.toml (kept if present)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    target = run_dir / JOB_FILE
    if not target.exists():
        atomic_write_bytes(target, Path(job_file).read_bytes())
    return run_dir


def fresh_training_state(spec: JobSpec) -> TrainingState:
    """training_state.json of a run that has not started: the job's batch and checkpointing."""
    t = spec.training
    return TrainingState(micro_batch=t.batch_size, grad_accumulation=t.grad_accumulation,
                         effective_batch=t.effective_batch, grad_checkpoint=spec.memory.grad_checkpoint)
