"""The job file of a continued job (farensectl continue): the parent's job as it ran, with an
[init] table naming the parent and its adapters, its own folder, and the new length; pure."""

from __future__ import annotations

import tomllib

from farensed.core import tomlwrite
from farensed.core.errors import FarensedError


def parse_set(item: str) -> tuple[str, object]:
    """`section.key=value` (value in TOML: 3, 2e-4, true, "text"; a bare word is a string)."""
    key, sep, text = item.partition("=")
    key, text = key.strip(), text.strip()
    if not sep or not key or not text:
        raise FarensedError(f"--set {item!r}: expected key=value, e.g. --set training.learning_rate=1e-4")
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text
    return key, value


def continued(parent_text: str, parent_id: str, adapters: str, steps_before: int, epochs: int | None,
              steps: int | None, sets: list[tuple[str, object]], optimizer: str = "auto") -> str:
    """The new job's TOML text."""
    raw = tomllib.loads(parent_text)
    for key in ("output", "sweep", "init"):
        raw.pop(key, None)
    raw["name"] = f"{raw.get('name', parent_id)} (continued)"
    training = raw.setdefault("training", {})
    if steps is not None:
        training["max_steps"] = steps
    else:
        training.pop("max_steps", None)
        training["epochs"] = epochs or 1
    training["warmup_steps"] = 0  # the adapters (and often the optimizer state) are warm already
    for key, value in sets:
        section, _, field = key.rpartition(".")
        (raw.setdefault(section, {}) if section else raw)[field] = value
    raw["init"] = {"job": parent_id, "adapters": adapters, "optimizer": optimizer, "steps_before": steps_before}
    length = f"{steps} steps" if steps is not None else f"{epochs or 1} epoch(s)"
    return tomlwrite.dumps(raw, f"continued from job {parent_id} ({adapters} adapters, after its step {steps_before}):"
                                f" {length} more, no warm-up (farensectl continue)")
