"""[init]: a new run starts from adapters trained before (farensectl continue, or any mlx-lm
adapter folder), and from their optimizer state when the checkpoint holds one and the settings
allow. Applied once, at a fresh start only: a resume loads its own checkpoint instead."""

from __future__ import annotations

import mlx.core as mx
from mlx.utils import tree_flatten, tree_map_with_path

from farensed.core import lineage
from farensed.core.jobspec import JobSpec
from farensed.core.paths import Home
from farensed.worker.model import BadJob


def apply(model, optimizer, spec: JobSpec, home: Home, log) -> None:
    """Load the [init] adapters into `model` (shapes checked) and, when allowed, the optimizer state."""
    if spec.init is None:
        return
    try:
        src = lineage.resolve(spec, home)
    except lineage.LineageError as e:
        raise BadJob(f"init: {e}") from None
    if problems := lineage.mismatch(spec, home, src):
        raise BadJob("; ".join(f"{k}: {m}" for k, m in problems))
    loaded = mx.load(str(src.adapters))
    own = dict(tree_flatten(model.trainable_parameters()))
    wrong = [k for k, v in loaded.items() if k in own and own[k].shape != v.shape]
    missing = [k for k in own if k not in loaded]
    if wrong or missing:
        raise BadJob(f"{src.adapters}: the adapters do not fit this job's model and [lora]"
                     f" ({len(wrong)} of another shape, {len(missing)} missing, e.g. {(wrong or missing)[0]})")
    model.load_weights(list(loaded.items()), strict=False)
    carried, why = _optimizer(optimizer, spec, src)
    log.info("init_adapters_loaded", adapters=str(src.adapters), parent=src.parent, parent_step=src.step,
             optimizer="carried over" if carried else "fresh", why=why)


def _optimizer(optimizer, spec: JobSpec, src: lineage.InitSource) -> tuple[bool, str]:
    if spec.init.optimizer == "fresh":
        return False, "[init] optimizer = fresh"
    if src.optimizer is None or not src.optimizer.is_file():
        return False, "the adapters come without an optimizer state (not from a checkpoint)"
    saved = mx.load(str(src.optimizer))
    flat = dict(tree_flatten(optimizer.state))
    if set(saved) != set(flat) or any(saved[k].shape != flat[k].shape for k in flat):
        return False, f"{src.optimizer}: its state does not fit this job's optimizer ({spec.training.optimizer})"
    optimizer.state = tree_map_with_path(lambda path, v: saved.get(path, v), optimizer.state)
    return True, "the parent's checkpoint holds it and the settings match"
