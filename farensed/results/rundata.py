"""Everything a run folder says about itself, read tolerantly: a running job has only some files."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from farensed.core.errors import FarensedError
from farensed.core.formats import (
    ANSWERS,
    CHECKPOINT_NAME,
    JOB_FILE,
    METRICS_JSON,
    METRICS_JSONL,
    PROGRESS,
    SUMMARY,
    TRAINING_STATE,
    WORKER_LOG,
    LiveProgress,
    MetricsRow,
    ScoredQuestion,
    TrainingState,
    TrainingSummary,
    read_answers,
    read_metrics_jsonl,
)
from farensed.core.jobfile import load_job
from farensed.core.jobspec import JobSpec
from farensed.core.reading import read_or_none


@dataclass
class RunData:
    run_dir: Path
    spec: JobSpec | None
    state: TrainingState | None
    progress: LiveProgress | None
    summary: TrainingSummary | None
    metrics: list[MetricsRow] = field(default_factory=list)
    checkpoints: list[tuple[int, str]] = field(default_factory=list)  # (step, folder name) still on disk
    saved_steps: list[int] = field(default_factory=list)  # every checkpoint the log saw, pruned ones too
    restart_steps: list[int] = field(default_factory=list)
    answers: list[ScoredQuestion] = field(default_factory=list)  # answers.jsonl: the scoring phase's lines
    parent: RunData | None = None  # the job this one continued ([init] job), read the same way

    @property
    def offset(self) -> int:
        """The parent's steps before this run's first: plots count this run's steps on from there."""
        return self.spec.init.steps_before if self.spec and self.spec.init else 0

    def lineage(self) -> str | None:
        """"continued from ..." in words, or None for a job that started from the base model."""
        init = self.spec.init if self.spec else None
        if init is None:
            return None
        source = f"job {init.job} ({init.adapters} adapters)" if init.job else f"adapters in {init.path}"
        return (f"continued from {source}; its steps count on from {init.steps_before}"
                f" (optimizer: {init.optimizer})")

    @property
    def name(self) -> str:
        return self.spec.name if self.spec else self.run_dir.name

    def trains(self) -> list[MetricsRow]:
        return [r for r in self.metrics if r.kind == "train"]

    def evals(self) -> list[MetricsRow]:
        return [r for r in self.metrics if r.kind == "eval" and r.val_loss is not None]

    def probes(self) -> list[MetricsRow]:
        """Eval rows with the answer probe's scores (probe_f1, and probe_valid_f1 without a test set)."""
        return [r for r in self.metrics if r.kind == "eval" and r.probe_f1 is not None]

    def checkpoint_steps(self) -> list[int]:
        return sorted(set(self.saved_steps) | {s for s, _ in self.checkpoints})

    def downshift_steps(self) -> list[int]:
        return [d.step for d in (self.state.downshifts if self.state else [])]


def read_metrics(run_dir: Path) -> list[MetricsRow]:
    """metrics.jsonl while running (append-only), else training_metrics.json (the final export)."""
    rows = read_metrics_jsonl(run_dir / METRICS_JSONL)
    if rows or not (run_dir / METRICS_JSON).is_file():
        return rows
    try:
        return [MetricsRow.model_validate(r) for r in json.loads((run_dir / METRICS_JSON).read_text("utf-8"))]
    except ValueError as e:
        raise FarensedError(f"{run_dir / METRICS_JSON}: not valid metrics: {e}") from None


def checkpoint_folders(run_dir: Path) -> list[tuple[int, str]]:
    found = [(int(m.group(2)), p.name) for p in run_dir.iterdir()
             if p.is_dir() and (m := CHECKPOINT_NAME.match(p.name))]
    return sorted(found)


def log_event_steps(run_dir: Path, events: tuple[str, ...]) -> dict[str, list[int]]:
    """Steps of the named events in worker.log (JSON lines; other lines and torn ones skipped)."""
    found: dict[str, list[int]] = {e: [] for e in events}
    log = run_dir / WORKER_LOG
    if not log.is_file():
        return found
    for line in log.read_text("utf-8", errors="replace").splitlines():
        if not any(f'"{e}"' in line for e in events):
            continue
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if ev.get("event") in found and isinstance(ev.get("step"), int):
            found[ev["event"]].append(ev["step"])
    return found


def _spec(run_dir: Path) -> JobSpec | None:
    try:
        return load_job(run_dir / JOB_FILE)
    except FarensedError:
        return None


def parent_dir(run_dir: Path, spec: JobSpec | None) -> Path | None:
    """The run folder of the job `spec` continued: its record's output folder, else the sibling folder."""
    if spec is None or spec.init is None or spec.init.job is None:
        return None
    from farensed.core.paths import Home
    from farensed.core.spool import records

    rec = read_or_none(records.record_path(Home.from_option().spool / "jobs", spec.init.job), records.JobRecord)
    folder = Path(rec.output_dir) if rec and rec.output_dir else run_dir.parent / spec.init.job
    return folder if folder.is_dir() and folder.resolve() != run_dir.resolve() else None


def load_run(run_dir: Path, depth: int = 0) -> RunData:
    """Read a run folder (and the parents it continued, a few deep); raises only when it is not one."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FarensedError(f"{run_dir}: run folder not found")
    logged = log_event_steps(run_dir, ("resumed", "checkpoint_saved"))
    return RunData(run_dir=run_dir, spec=_spec(run_dir), state=read_or_none(run_dir / TRAINING_STATE, TrainingState),
                   progress=read_or_none(run_dir / PROGRESS, LiveProgress),
                   summary=read_or_none(run_dir / SUMMARY, TrainingSummary),
                   metrics=read_metrics(run_dir), checkpoints=checkpoint_folders(run_dir),
                   saved_steps=sorted(set(logged["checkpoint_saved"])), restart_steps=logged["resumed"],
                   answers=read_answers(run_dir / ANSWERS), parent=_parent(run_dir, depth))


def _parent(run_dir: Path, depth: int) -> RunData | None:
    folder = parent_dir(run_dir, _spec(run_dir)) if depth < 8 else None
    return load_run(folder, depth + 1) if folder else None
