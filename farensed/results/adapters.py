"""Which model and adapters to ask: best (default: by the job's [evaluate] select rule, highest
probe F1 or lowest validation loss), final, a checkpoint, or the base model alone; and the words
that say which (ask, score, export and the plots print them)."""

from __future__ import annotations

import json
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from farensed.core.errors import FarensedError
from farensed.core.formats import ADAPTER_CONFIG, ADAPTERS, BEST_ADAPTERS, TRAINING_CONFIG
from farensed.core.model_source import local_or_hub
from farensed.core.paths import Home
from farensed.core.system_prompt import job_system_at
from farensed.results.rundata import RunData
from farensed.scoring.best import best_words

ADAPTER_FILE = ADAPTERS


@dataclass(frozen=True)
class Target:
    model: str  # local folder or hub id, as mlx_lm.load takes it
    adapters: Path | None  # an adapter folder; None = the base model
    label: str  # "best", "final", "checkpoint_epoch0_step8", "base"
    trust_remote_code: bool = False
    system: str | None = None  # the job's system prompt (core/system_prompt.py), put before each prompt
    about: str = ""  # in words: "best adapters (step 240, probe F1 0.71)"

    @property
    def words(self) -> str:
        return self.about or ("base" if self.adapters is None else f"{self.label} adapters")


def base_model(data: RunData, home: Home) -> str:
    """The model the run trained: training_config.json's path, else job.toml's against the home."""
    cfg = data.run_dir / TRAINING_CONFIG
    if cfg.is_file():
        try:
            model = json.loads(cfg.read_text("utf-8")).get("model")
        except ValueError:
            model = None
        if model and Path(model).exists():
            return model
    if data.spec is None:
        raise FarensedError(f"{data.run_dir / 'job.toml'}: missing or invalid, cannot tell the base model")
    return local_or_hub(data.spec.model, home)


def _need(folder: Path, what: str) -> Path:
    if not (folder / ADAPTER_FILE).is_file():
        raise FarensedError(f"{folder}: no {ADAPTER_FILE}: the {what} adapters are not written yet")
    return folder


def _checkpoint_dir(data: RunData, name: str) -> Path:
    """A checkpoint by folder name or by step number."""
    for step, folder in data.checkpoints:
        if name in (folder, str(step)):
            return data.run_dir / folder
    have = ", ".join(f for _, f in data.checkpoints) or "none"
    raise FarensedError(f"{data.run_dir}: no checkpoint {name!r} (have: {have})")


def choose(data: RunData, home: Home, final: bool = False, checkpoint: str | None = None,
           base: bool = False) -> Target:
    """The model and adapter folder for one choice; checkpoints still need `adapter_folder`."""
    if sum([final, checkpoint is not None, base]) > 1:
        raise FarensedError("choose one of --final, --checkpoint, --base")
    trust = bool(data.spec and data.spec.trust_remote_code)
    model = base_model(data, home)
    target = partial(Target, trust_remote_code=trust, system=job_system_at(data.spec, home) if data.spec else None)
    if base:
        return target(model, None, "base")
    if final:
        return target(model, _need(data.run_dir, "final"), "final")
    if checkpoint is not None:
        folder = _checkpoint_dir(data, checkpoint)
        return target(model, _need(folder, "checkpoint"), folder.name)
    best = data.run_dir / BEST_ADAPTERS
    if (best / ADAPTER_FILE).is_file():
        return target(model, best, "best", about=best_about(data))
    return target(model, _need(data.run_dir, "best or final"), "final")


def best_about(data: RunData) -> str:
    """`best adapters (step 240, probe F1 0.71)`, from the run's state (else its summary)."""
    st, s = data.state, data.summary
    src = st if st is not None and st.best_step is not None else s
    if src is None or src.best_step is None:
        return "best adapters"
    plan = (st.probe if st else None) or (s.probe if s else None)
    select = plan.select if plan else "val_loss"  # a run from before the probe: chosen by loss
    return f"best adapters ({best_words(src.best_step, src.best_score, src.best_val_loss, select)})"


def _config_for(run_dir: Path) -> Path:
    for folder in (run_dir, run_dir / BEST_ADAPTERS):
        if (folder / ADAPTER_CONFIG).is_file():
            return folder / ADAPTER_CONFIG
    raise FarensedError(f"{run_dir}: no {ADAPTER_CONFIG} yet (written at the first evaluation): "
                        f"cannot load a checkpoint's adapters without it")


@contextmanager
def adapter_folder(target: Target, run_dir: Path):
    """The adapter folder mlx-lm loads: checkpoints hold only tensors, so pair them with the run's config."""
    if target.adapters is None or (target.adapters / ADAPTER_CONFIG).is_file():
        yield target.adapters
        return
    tmp = Path(tempfile.mkdtemp(prefix="farensed-adapters-"))
    try:
        shutil.copyfile(_config_for(run_dir), tmp / ADAPTER_CONFIG)
        shutil.copyfile(target.adapters / ADAPTER_FILE, tmp / ADAPTER_FILE)  # a copy: training may prune it
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
