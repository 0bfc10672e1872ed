"""`--adapters best|final|step:N` for serve and export: which adapters, and for a job still
training the best of its checkpoints that verify against their manifests."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from farensed.core.checkpoint_manifest import sha256_of, verify
from farensed.core.errors import FarensedError
from farensed.core.formats import ADAPTERS
from farensed.core.paths import Home
from farensed.results.adapters import Target, choose
from farensed.results.rundata import RunData

TRAINING = ("starting", "running", "stopped")  # training_state.json statuses before the final adapters
CHOICE_HELP = "best (default), final, or a checkpoint: step:N (or its folder name)"


def parse_choice(text: str) -> tuple[str, str | None]:
    """("best"|"final"|"checkpoint", checkpoint name or step)."""
    text = text.strip()
    if text in ("best", "final"):
        return text, None
    if m := re.fullmatch(r"(?:step[:=]?)?(\d+)", text):
        return "checkpoint", m.group(1)
    if re.fullmatch(r"checkpoint_epoch\d+_step\d+", text):
        return "checkpoint", text
    raise FarensedError(f"--adapters {text!r}: expected {CHOICE_HELP}")


def still_training(data: RunData) -> bool:
    return data.state is not None and data.state.status in TRAINING and not (data.run_dir / ADAPTERS).is_file()


def best_verified(data: RunData, home: Home) -> Target:
    """The checkpoint at the best step so far, else the newest, of those that verify."""
    verified = [(step, name) for step, name in reversed(data.checkpoints) if verify(data.run_dir / name)]
    if not verified:
        raise FarensedError(f"{data.run_dir}: still training and no checkpoint verifies yet: wait for the first"
                            " one (cadence.checkpoint_every), or choose --adapters step:N")
    best = data.state.best_step if data.state else None
    step, name = next(((s, n) for s, n in verified if s == best), verified[0])
    why = ("best so far" if step == best else "newest verified; no evaluation yet" if best is None
           else f"newest verified; the best step {best} has no checkpoint")
    target = choose(data, home, checkpoint=name)
    return replace(target, label=f"{name} ({why})")


def pick(data: RunData, home: Home, choice: str = "best") -> Target:
    kind, name = parse_choice(choice)
    if kind == "best" and still_training(data):
        return best_verified(data, home)
    return choose(data, home, final=kind == "final", checkpoint=name)


def check_copy(target: Target, folder: Path) -> None:
    """A checkpoint's adapters, copied for mlx-lm, must still be the ones its manifest vouches for."""
    manifest = verify(target.adapters) if target.adapters is not None else None
    if manifest is None or folder == target.adapters:
        return
    if sha256_of(folder / ADAPTERS) != manifest.files.get(ADAPTERS):
        raise FarensedError(f"{target.adapters}: changed while it was copied (training pruned it?): try again")
