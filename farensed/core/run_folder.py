"""A run folder (a job's output folder) is prepared from a job file; no mlx here."""

from __future__ import annotations

from pathlib import Path

from farensed.core.atomic import atomic_write_bytes
from farensed.core.errors import StateError
from farensed.core.formats import JOB_FILE, TRAINING_STATE, TrainingState, read_model
from farensed.core.jobspec import JobSpec
from farensed.core.reading import set_aside


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


def read_training_state(run_dir: Path, spec: JobSpec, log) -> TrainingState:
    """training_state.json as last written, else a fresh one. An unreadable one (torn by a disk
    fault, edited by hand) is set aside with its bytes and the run starts from a fresh state: the
    worker then resumes from the newest checkpoint that verifies, which holds all a resume needs."""
    path = run_dir / TRAINING_STATE
    try:
        return read_model(path, TrainingState)
    except StateError as e:
        if not path.exists():
            return fresh_training_state(spec)
        aside = set_aside(path)
        log.warning("training_state_unreadable", file=str(path), kept_as=aside.name, error=str(e))
        return fresh_training_state(spec)
