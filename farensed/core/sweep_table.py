"""A sweep's trials and its winner, as the daemon last saw them: <home>/sweeps/<id>/sweep.json.

The daemon writes it after every change (Optuna's study, in study.log beside it, is the truth the
daemon recovers from); farensectl status, compare and the dashboard read it without Optuna.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from farensed.core.atomic import atomic_write_json
from farensed.core.formats import read_model
from farensed.core.paths import Home
from farensed.core.strict import Strict

SWEEP_TABLE = "sweep.json"
STUDY_LOG = "study.log"

TrialState = Literal["queued", "running", "paused", "done", "pruned", "failed", "cancelled"]


class TrialRow(Strict):
    number: int  # Optuna's trial number (0-based); the job id ends in -t<number + 1>
    job_id: str
    params: dict[str, float | int | bool | str]
    state: TrialState
    value: float | None = None  # the metric: best probe F1 ("answers") or best validation loss
    step: int | None = None  # the step of that value
    last_step: int | None = None  # where it stopped (a pruned trial's last eval)
    reason: str | None = None


class SweepTable(Strict):
    schema_version: Literal[1] = 1
    id: str
    name: str
    method: str
    metric: Literal["answers", "val_loss"]
    direction: Literal["maximize", "minimize"]
    pruner: str
    trials_total: int
    trials: list[TrialRow] = Field(default_factory=list)
    winner: str | None = None  # the job id of the best finished trial
    updated_at: float = 0.0

    def ranked(self) -> list[TrialRow]:
        """Trials with a value, best first (pruned ones after the finished); then the rest."""
        sign = -1 if self.direction == "maximize" else 1
        scored = [t for t in self.trials if t.value is not None]
        scored.sort(key=lambda t: (t.state != "done", sign * t.value, t.number))
        return scored + [t for t in self.trials if t.value is None]


def sweep_dir(home: Home, sweep_id: str) -> Path:
    return home.root / "sweeps" / sweep_id


def write(home: Home, table: SweepTable) -> None:
    folder = sweep_dir(home, table.id)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(folder / SWEEP_TABLE, table)


def read(home: Home, sweep_id: str) -> SweepTable | None:
    path = sweep_dir(home, sweep_id) / SWEEP_TABLE
    return read_model(path, SweepTable) if path.is_file() else None
