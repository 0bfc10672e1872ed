"""Gradient checkpointing that we own: switched on and off per model, any number of times.

mlx-lm's `grad_checkpoint(layer)` replaces `type(layer).__call__` for every model in the
process and wraps it again on each call, so a rebuild nests one checkpoint in another (the
backward then recomputes a block twice). Here each transformer block *instance* gets its
class swapped for a subclass whose `__call__` runs the block under `mx.checkpoint`, and back.
Parameter paths do not change, so adapter files stay in mlx-lm's format.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

_CHECKPOINTED: dict[type, type] = {}


def _checkpointed(base: type) -> type:
    """The one checkpointing subclass of a block class (made once, then reused)."""
    if base not in _CHECKPOINTED:
        def __call__(self, *args, **kwargs):
            def inner(params, *a, **k):
                self.update(params)  # the traced parameters, so their gradients flow
                return base.__call__(self, *a, **k)
            return mx.checkpoint(inner)(self.trainable_parameters(), *args, **kwargs)

        _CHECKPOINTED[base] = type(f"Checkpointed{base.__name__}", (base,),
                                   {"__call__": __call__, "_farensed_base": base})
    return _CHECKPOINTED[base]


def _base(block: nn.Module) -> type:
    return getattr(type(block), "_farensed_base", type(block))


def set_grad_checkpoint(model: nn.Module, on: bool) -> None:
    """Checkpoint every transformer block of `model` (on) or none (off); idempotent."""
    for block in model.layers:
        block.__class__ = _checkpointed(_base(block)) if on else _base(block)


def is_grad_checkpointed(model: nn.Module) -> bool:
    return any(type(b) is not _base(b) for b in model.layers)
