"""With `[report] tensorboard = true`, every metrics row also goes into TensorBoard event files in
the run folder (tensorboardX, the optional extra `tensorboard`), so `tensorboard --logdir
checkpoints` shows every job as a run named by its id.

After a resume the writer starts with purge_step at its first row: TensorBoard then drops what an
earlier process wrote from that step on, so the curves show each step once, as metrics.jsonl does.
"""

from __future__ import annotations

from pathlib import Path

from farensed.core.formats import MetricsRow
from farensed.core.jobspec import JobSpec
from farensed.worker.model import BadJob

# metrics field -> TensorBoard tag; an eval's answer-score fields (..f1.., ..exact..) go under answers/
TRAIN_TAGS = {"train_loss": "loss/train", "learning_rate": "learning_rate", "tokens_per_sec": "speed/tokens_per_sec",
              "steps_per_sec": "speed/steps_per_sec", "active_memory_gb": "memory/active_gb",
              "peak_memory_gb": "memory/peak_gb"}
EVAL_TAGS = {"val_loss": "loss/val"}
SCORE_WORDS = ("f1", "exact")


def tags(row: MetricsRow) -> dict[str, float]:
    """The row's scalars by tag (the fields it has values for)."""
    fields = row.model_dump()
    known = TRAIN_TAGS if row.kind == "train" else EVAL_TAGS
    out = {tag: fields[f] for f, tag in known.items() if fields.get(f) is not None}
    if row.kind == "eval":
        out |= {f"answers/{f}": v for f, v in fields.items()
                if any(w in f for w in SCORE_WORDS) and isinstance(v, (int, float)) and not isinstance(v, bool)}
    return out


class Scalars:
    """The run's event writer, opened at its first row; does nothing when the job did not ask."""

    def __init__(self, run_dir: Path, enabled: bool):
        self.dir, self.enabled, self.writer = run_dir, enabled, None
        if enabled:
            try:
                import tensorboardX  # noqa: F401 - fail now, as a bad job, not at the first row
            except ImportError:
                raise BadJob("report.tensorboard = true needs tensorboardX: pip install 'farensed[tensorboard]'"
                             " (or set it to false)") from None

    def add(self, row: MetricsRow) -> None:
        if not self.enabled:
            return
        if self.writer is None:
            from tensorboardX import SummaryWriter

            self.writer = SummaryWriter(logdir=str(self.dir), purge_step=row.step)
        for tag, value in tags(row).items():
            self.writer.add_scalar(tag, value, row.step)
        self.writer.flush()  # a killed worker loses no row it already logged

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def for_run(run_dir: Path, spec: JobSpec) -> Scalars:
    return Scalars(run_dir, spec.report.tensorboard)
