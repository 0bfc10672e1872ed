"""Where a job's [init] adapters come from, and whether they fit the job: the one rule that
validate, submit, the daemon and the worker apply (no mlx: a safetensors header is JSON).

A job continued from a farensed job names it (`[init] job`); its adapters are the final ones
(the newest checkpoint, which also holds the optimizer state), the best ones, or a checkpoint's.
Any mlx-lm adapter folder (`[init] path`) can be continued too; it holds no optimizer state.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from farensed.core.errors import FarensedError
from farensed.core.formats import ADAPTER_CONFIG, ADAPTERS, BEST_ADAPTERS, CHECKPOINT_NAME, JOB_FILE, OPTIMIZER
from farensed.core.jobspec import JobSpec
from farensed.core.paths import Home
from farensed.core.spool import records

_LAYER = re.compile(r"(?:^|\.)layers\.(\d+)\.(.+)\.lora_a$")


class LineageError(FarensedError):
    """[init] names adapters that cannot be used; `key` is the job-file key to blame."""

    def __init__(self, message: str, key: str = "init"):
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class InitSource:
    """The adapters a job starts from, resolved."""

    adapters: Path  # the .safetensors file
    optimizer: Path | None  # a checkpoint's optimizer state, or None
    parent: str | None  # the parent job's id
    parent_dir: Path | None  # the parent's run folder
    step: int | None  # the parent's step these adapters are from (None: unknown)


def parent_run(home: Home, job_id: str) -> tuple[Path, str]:
    """(run folder, state) of a recorded job; LineageError when there is no such job."""
    try:
        rec = records.load(home.spool / "jobs", job_id)
    except FarensedError:
        rec = None
    if rec is None and (home.spool / f"{job_id}.toml").is_file():
        raise LineageError(f"job {job_id} is submitted (waiting for the daemon), not finished: continue it once it"
                           " is done", "init.job")
    if rec is None:
        raise LineageError(f"no job {job_id!r} in {home.spool / 'jobs'}", "init.job")
    if rec.kind == "sweep":
        from farensed.core import sweep_table

        table = sweep_table.read(home, job_id)
        win = f": continue its winner, {table.winner}" if table and table.winner else " (no trial has finished yet)"
        raise LineageError(f"{job_id} is a sweep, not a job with adapters{win}", "init.job")
    if not rec.output_dir:
        raise LineageError(f"job {job_id} is {rec.state} and has no run folder", "init.job")
    return Path(rec.output_dir), rec.state


def _checkpoints(run: Path) -> list[tuple[int, Path]]:
    found = [(int(m.group(2)), p) for p in run.iterdir() if p.is_dir() and (m := CHECKPOINT_NAME.match(p.name))
             and (p / "manifest.json").is_file() and (p / ADAPTERS).is_file()] if run.is_dir() else []
    return sorted(found, reverse=True)


def _best_step(run: Path) -> int | None:
    try:
        return json.loads((run / "training_summary.json").read_text(encoding="utf-8")).get("best_step")
    except (OSError, ValueError):
        return None


def resolve(spec: JobSpec, home: Home) -> InitSource:
    """The [init] adapters of `spec` (which has an [init] table); LineageError naming the key or file."""
    init = spec.init
    if init.path is not None:
        folder = home.resolve(init.path)
        if not (folder / ADAPTERS).is_file():
            raise LineageError(f"{folder}: no {ADAPTERS} in it: not an adapter folder", "init.path")
        return InitSource(folder / ADAPTERS, None, None, None, None)
    run, state = parent_run(home, init.job)
    if state != "done":
        raise LineageError(f"job {init.job} is {state}, not finished: continue it once it is done", "init.job")
    ckpts = _checkpoints(run)
    if init.adapters.startswith("step:"):
        step = int(init.adapters.split(":")[1])
        found = [p for s, p in ckpts if s == step]
        if not found:
            have = ", ".join(str(s) for s, _ in ckpts) or "none"
            raise LineageError(f"{run}: no checkpoint at step {step} (checkpoints kept: {have})", "init.adapters")
        return InitSource(found[0] / ADAPTERS, found[0] / OPTIMIZER, init.job, run, step)
    if init.adapters == "best":
        best, step = run / BEST_ADAPTERS / ADAPTERS, _best_step(run)
        at = [p for s, p in ckpts if s == step]
        if at:  # the best step's checkpoint also holds its optimizer state
            return InitSource(at[0] / ADAPTERS, at[0] / OPTIMIZER, init.job, run, step)
        if best.is_file():
            return InitSource(best, None, init.job, run, step)
        raise LineageError(f"{run}: no best adapters ({BEST_ADAPTERS}/{ADAPTERS})", "init.adapters")
    if ckpts:  # final: the newest checkpoint (a finished job's is at its last step; a pruned trial's, where it stopped)
        step, newest = ckpts[0]
        return InitSource(newest / ADAPTERS, newest / OPTIMIZER, init.job, run, step)
    if (run / ADAPTERS).is_file():
        return InitSource(run / ADAPTERS, None, init.job, run, None)
    raise LineageError(f"{run}: holds no adapters (no checkpoint, no {ADAPTERS})", "init.job")


def tensor_shapes(file: Path) -> dict[str, list[int]]:
    """Names and shapes of a .safetensors file's tensors, from its JSON header."""
    try:
        with open(file, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > 100 * 2**20:
                raise ValueError("header too large")
            header = json.loads(f.read(n))
    except (OSError, ValueError, struct.error) as e:
        raise LineageError(f"{file}: not a readable safetensors file ({e})") from None
    return {k: v["shape"] for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)}


def _model_dims(model: Path) -> tuple[int | None, set[int]]:
    try:
        cfg = json.loads((model / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, set()
    cfg = cfg.get("text_config", cfg)
    dims = {cfg.get("hidden_size"), cfg.get("intermediate_size"), cfg.get("head_dim")}
    return cfg.get("num_hidden_layers"), {d for d in dims if isinstance(d, int)}


def mismatch(spec: JobSpec, home: Home, src: InitSource) -> list[tuple[str, str]]:
    """(key, message) for each way the adapters do not fit the job's model and [lora]; [] when they do."""
    shapes = tensor_shapes(src.adapters)
    lora = {k: v for k, v in shapes.items() if _LAYER.search(k)}
    if not lora:
        return [("init", f"{src.adapters}: no LoRA adapters in it (no *.lora_a tensors)")]
    out = []
    ranks = {v[-1] for v in lora.values()}
    if ranks != {spec.lora.rank}:
        out.append(("lora.rank", f"{spec.lora.rank} does not match the adapters' rank {sorted(ranks)}"
                    f" ({src.adapters})"))
    modules = {_LAYER.search(k).group(2).rsplit(".", 1)[-1] for k in lora}
    if modules != set(spec.lora.target_modules):
        out.append(("lora.target_modules", f"{sorted(spec.lora.target_modules)} do not match the adapters' modules"
                    f" {sorted(modules)} ({src.adapters})"))
    n_layers, dims = _model_dims(home.resolve(spec.model))
    layers = {int(_LAYER.search(k).group(1)) for k in lora}
    if n_layers is not None and max(layers) >= n_layers:
        out.append(("model", f"{spec.model} has {n_layers} layers; the adapters reach layer {max(layers)}: they were"
                    f" trained on another model ({src.adapters})"))
    elif dims and any(v[0] not in dims for v in lora.values()):
        out.append(("model", f"the adapters' input sizes do not fit {spec.model}: they were trained on another"
                    f" model ({src.adapters})"))
    elif n_layers is not None:
        want = n_layers if spec.lora.num_layers < 0 else min(spec.lora.num_layers, n_layers)
        if len(layers) != want:
            out.append(("lora.num_layers", f"{spec.lora.num_layers} gives adapters on {want} layers; the adapters"
                        f" have {len(layers)} ({src.adapters})"))
    if src.parent_dir is not None:
        out += _same_base(spec, home, src.parent_dir)
    return out


def _same_base(spec: JobSpec, home: Home, parent_dir: Path) -> list[tuple[str, str]]:
    from farensed.core.jobfile import load_job  # the parent's own job file

    try:
        parent = load_job(parent_dir / JOB_FILE)
    except FarensedError:
        return []
    if home.resolve(parent.model).resolve() != home.resolve(spec.model).resolve():
        return [("model", f"{spec.model} is not the model the adapters were trained on ({parent.model}, job"
                 f" {spec.init.job})")]
    return []


def adapter_config_of(src: InitSource) -> Path | None:
    cfg = src.adapters.parent / ADAPTER_CONFIG
    return cfg if cfg.is_file() else None


def problems(spec: JobSpec, home: Home) -> list[tuple[str, str]]:
    """Every [init] problem as (key, message); [] without [init] or when it fits."""
    if spec.init is None:
        return []
    try:
        return mismatch(spec, home, resolve(spec, home))
    except LineageError as e:
        return [(e.key, str(e))]
