"""The job file's two experiment tables: [init] (start from adapters trained before) and [sweep]
(many trials of one job with different settings). Their models only: what a sweep may vary and
how a trial's job is built is in core/sweep_params.py; where [init]'s adapters are, core/lineage.py."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from farensed.core.strict import Strict

MAX_TRIALS = 100  # a sweep of more trials than this is refused: it would not end by morning
_ADAPTERS = re.compile(r"final|best|step:[1-9][0-9]{0,9}")


class _Table(Strict):
    model_config = ConfigDict(validate_assignment=True, strict=True, allow_inf_nan=False)


class Init(_Table):
    """Start from adapters trained before: a farensed job's (`job`) or any mlx-lm adapter folder (`path`)."""

    job: str | None = Field(None, min_length=1, max_length=200,
                            description="the job id whose adapters this job starts from (farensectl continue)")
    path: str | None = Field(None, min_length=1, description="or: an mlx-lm adapter folder (adapters.safetensors +"
                             " adapter_config.json) trained elsewhere")
    adapters: str = Field("final", description='with job: "final", "best" or "step:S" (a checkpoint\'s step)')
    optimizer: Literal["auto", "fresh"] = Field(
        "auto", description='"auto": carry the optimizer state over when the job\'s checkpoint holds one and the'
                            ' settings allow; "fresh": always a new optimizer')
    steps_before: int = Field(0, ge=0, le=10**9, description="the parent's steps before this job's first one (the"
                              " plots count on from there); written by farensectl continue")

    @field_validator("adapters")
    @classmethod
    def _which(cls, v: str) -> str:
        if not _ADAPTERS.fullmatch(v):
            raise ValueError('expected "final", "best" or "step:S" with S a step number')
        return v

    @model_validator(mode="after")
    def _one_source(self):
        if (self.job is None) == (self.path is None):
            raise ValueError("give job (a farensed job id) or path (an adapter folder), one of the two")
        if self.path is not None and self.adapters != "final":
            raise ValueError("adapters applies to job; an adapter folder holds one set of adapters")
        return self


class Range(_Table):
    """A numeric range a sampler draws from (random, tpe); grid needs lists."""

    min: float | int
    max: float | int
    log: bool = Field(False, description="draw on a log scale (learning rates)")
    step: float | int | None = Field(None, gt=0, description="draw on this grid of steps from min")

    @model_validator(mode="after")
    def _ordered(self):
        if self.min > self.max:
            raise ValueError(f"min {self.min} is larger than max {self.max}")
        if self.log and self.min <= 0:
            raise ValueError("a log range needs min > 0")
        return self


Values = list[float | int | bool | str]


class Sweep(_Table):
    """Trials of this job with settings drawn from `params`; each trial is an ordinary job."""

    method: Literal["grid", "random", "tpe"] = Field("tpe", description="grid: every combination of the lists;"
                                                     " random; tpe: Optuna's model-based sampler")
    trials: int | None = Field(None, ge=1, le=MAX_TRIALS, description=f"trials in all (at most {MAX_TRIALS}); grid:"
                               " default every combination")
    metric: Literal["answers", "val_loss"] = Field("answers", description='"answers": the probe\'s F1 at evals'
                                                   ' (higher is better); "val_loss" (lower is better)')
    pruner: Literal["none", "median", "halving", "hyperband"] = Field(
        "halving", description="stop hopeless trials at evals: successive halving, hyperband, median, or none")
    prune_after: int | None = Field(None, ge=1, le=10**9, description="no trial is pruned before this step (the"
                                    " pruner's first rung); default the first eval (cadence.eval_every)")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="the sampler's seed")
    params: dict[str, Values | Range] = Field(min_length=1, description='what to vary: "section.key" = [values] or'
                                              ' {min, max, log, step}')

    @field_validator("params", mode="before")
    @classmethod
    def _read(cls, v):
        """Dotted keys; each value a list or a Range, its error named by the key (not by the union's branches)."""
        if not isinstance(v, dict):
            return v
        out = {}
        for key, val in cls._flatten(v).items():
            if isinstance(val, dict):
                try:
                    val = Range.model_validate(val)
                except ValidationError as e:
                    err = e.errors()[0]
                    where = ".".join(str(x) for x in err["loc"])
                    raise ValueError(f"{key}: {where + ': ' if where else ''}{err['msg'].removeprefix('Value error, ')}"
                                     ) from None
            elif not isinstance(val, list):
                raise ValueError(f"{key}: expected a list of values or a range {{min = ..., max = ...}}")
            out[key] = val
        return out

    @classmethod
    def _flatten(cls, v: dict) -> dict:
        """TOML writes `training.learning_rate = [...]` as nested tables: flatten them to dotted keys."""
        flat: dict = {}
        for key, val in v.items():
            if isinstance(val, dict) and not {"min", "max"} & set(val):
                for sub, inner in cls._flatten(val).items():
                    flat[f"{key}.{sub}"] = inner
            else:
                flat[key] = val
        return flat

    @field_validator("params", mode="after")
    @classmethod
    def _non_empty(cls, v: dict):
        for key, val in v.items():
            if isinstance(val, list) and not val:
                raise ValueError(f"{key}: an empty list of values")
        return v
