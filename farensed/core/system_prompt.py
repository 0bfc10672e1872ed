"""The job's system prompt (pure, no mlx): `[generate].system` when set, else the one system message
every chat example of the training data starts with. Generating, scoring, ask, serve and the exports
all ask this, so the model is asked the way it was trained."""

from __future__ import annotations

from farensed.core.datasets import Example, Splits, load_splits
from farensed.core.errors import FarensedError
from farensed.core.jobspec import JobSpec
from farensed.core.paths import Home


def shared_system(examples: list[Example]) -> str | None:
    """The system message all chat examples begin with, when they all begin with the same one."""
    seen: set[str] = set()
    for ex in examples:
        msgs = ex.obj.get("messages") if ex.format == "chat" else None
        if not msgs or msgs[0].get("role") != "system":
            return None
        seen.add(msgs[0]["content"])
        if len(seen) > 1:
            return None
    return next(iter(seen), None) or None


def data_system(splits: Splits) -> str | None:
    return shared_system(splits.train + splits.valid)


def job_system(spec: JobSpec, splits: Splits | None) -> str | None:
    """`[generate].system` ("" = none), else the data's shared system prompt (None without splits)."""
    if spec.generate.system is not None:
        return spec.generate.system or None
    return data_system(splits) if splits is not None else None


def job_system_at(spec: JobSpec, home: Home) -> str | None:
    """job_system, reading the job's data from the home (unreadable data: no system prompt)."""
    if spec.generate.system is not None:
        return spec.generate.system or None
    try:
        return data_system(load_splits(home.resolve(spec.data), spec.valid_fraction, spec.training.seed))
    except (FarensedError, OSError, UnicodeDecodeError):
        return None
