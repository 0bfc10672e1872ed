"""Every path hangs off one home: --home, else $FARENSED_HOME, else the repository folder."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_HOME = "FARENSED_HOME"
REPO_ROOT = Path(__file__).resolve().parents[2]  # farensed/core/paths.py: the repository


def resolve_home(home: str | os.PathLike | None = None) -> Path:
    """The farensed home: the explicit argument, $FARENSED_HOME, or the repository."""
    chosen = home or os.environ.get(ENV_HOME) or REPO_ROOT
    return Path(chosen).expanduser().resolve()


@dataclass(frozen=True)
class Home:
    """The folders and files under one farensed home."""

    root: Path

    @classmethod
    def from_option(cls, home: str | os.PathLike | None = None) -> Home:
        return cls(resolve_home(home))

    @property
    def spool(self) -> Path:
        return self.root / "spool"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def status_file(self) -> Path:
        return self.root / "status.json"

    @property
    def lock_file(self) -> Path:
        return self.root / "farensed.lock"

    def resolve(self, value: str | os.PathLike) -> Path:
        """A job file's path: relative to the home, absolute taken as is."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.root / p)
