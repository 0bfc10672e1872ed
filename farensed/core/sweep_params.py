"""What a sweep may vary and how one trial's job is built from the sweep's file: pure, no Optuna.

A trial's job is the sweep's job without [sweep], with each swept key set to the trial's value.
Every value a sweep can choose (each list item, each range's ends) is checked against the job's
schema before anything runs, so a sweep never starts a trial that its own job file would refuse.
"""

from __future__ import annotations

import difflib
import itertools
import math
import types
import typing

from pydantic import BaseModel, ValidationError

from farensed.core.experiment_spec import Range, Sweep
from farensed.core.jobspec import JobSpec

# Settings a trial may not change: they say what is trained on what and where it goes.
NOT_SWEPT = {"schema_version", "name", "model", "data", "output", "trust_remote_code", "init", "sweep",
             "distributed", "evaluate.data", "priority", "max_restarts", "valid_fraction"}


def _scalar(annotation) -> str | None:
    """'number', 'choice' or None (lists, tables)."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        annotation = args[0]
    if annotation in (int, float):
        return "number"
    if annotation is bool or typing.get_origin(annotation) is typing.Literal:
        return "choice"
    return None


def sweepable() -> dict[str, str]:
    """Every key a sweep may vary ("section.key"), with its kind."""
    out = {}
    for name, info in JobSpec.model_fields.items():
        sub = info.annotation if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel) else None
        fields = sub.model_fields.items() if sub else [(None, info)]
        for key, f in fields:
            path = f"{name}.{key}" if key else name
            kind = _scalar(f.annotation)
            if kind and path not in NOT_SWEPT and name not in NOT_SWEPT:
                out[path] = kind
    return out


def with_values(raw: dict, values: dict[str, object]) -> dict:
    """The job's raw TOML dict with each dotted key set (nothing else changes), [sweep] removed."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items() if k != "sweep"}
    for key, value in values.items():
        section, _, field = key.rpartition(".")
        if section:
            out.setdefault(section, {})[field] = value
        else:
            out[field] = value
    return out


def _int_field(key: str) -> bool:
    section, _, field = key.rpartition(".")
    model = JobSpec.model_fields[section].annotation if section else JobSpec
    info = model.model_fields[field]
    return int in typing.get_args(info.annotation) or info.annotation is int


def _probe_values(key: str, spec) -> list:
    if isinstance(spec, Range):
        return [spec.min, spec.max]
    return list(spec)


def problems(raw: dict, sweep: Sweep) -> list[tuple[str, str]]:
    """(key, message) for every swept key or value the job would refuse; [] when the sweep can run."""
    allowed, out = sweepable(), []
    for key, spec in sweep.params.items():
        where = f"sweep.params.{key}"
        if key not in allowed:
            if key in NOT_SWEPT or key.split(".")[0] in NOT_SWEPT:
                hint = ": it cannot be swept (it says what is trained on what, and where)"
            else:
                close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]}?)" if close else " (docs/experiments.md lists what can be swept)"
            out.append((where, f"unknown key {key!r}{hint}"))
            continue
        if isinstance(spec, Range):
            if allowed[key] != "number":
                out.append((where, f"{key} is a choice: give a list of values, not a range"))
                continue
            if _int_field(key) and not all(float(x).is_integer() for x in (spec.min, spec.max)):
                out.append((where, f"{key} is a whole number: min and max must be whole"))
                continue
            if sweep.method == "grid":
                out.append((where, "grid needs a list of values for every key, not a range"))
                continue
        for value in _probe_values(key, spec):
            value = int(value) if _int_field(key) and isinstance(value, float) and value.is_integer() else value
            try:
                JobSpec.model_validate(with_values(raw, {key: value}))
            except ValidationError as e:
                out.append((where, f"value {value!r}: {e.errors()[0]['msg']}"))
                break
    if sweep.metric == "answers" and not out:
        probe = raw.get("evaluate", {}).get("probe", 1)
        if probe == 0 or any(k == "evaluate.probe" for k in sweep.params):
            out.append(("sweep.metric", 'metric "answers" needs the probe at evals ([evaluate] probe > 0, not'
                        ' swept); or set metric = "val_loss"'))
    return out


def grid(sweep: Sweep) -> dict[str, list]:
    """The grid's axes (grid method: lists only)."""
    return {k: list(v) for k, v in sweep.params.items() if not isinstance(v, Range)}


def trial_count(sweep: Sweep) -> int:
    """How many trials the sweep runs: `trials`, else (grid) every combination, else 8."""
    if sweep.method == "grid":
        size = math.prod(len(v) for v in grid(sweep).values())
        return min(sweep.trials or size, size)
    return sweep.trials or 8


def grid_points(sweep: Sweep) -> list[dict]:
    axes = grid(sweep)
    return [dict(zip(axes, combo)) for combo in itertools.product(*axes.values())]


def is_int(key: str) -> bool:
    return _int_field(key)
