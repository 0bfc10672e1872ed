"""The step's math, compiled: the micro-step (token-summed loss and gradient of one micro-batch,
added to the step's sum) and the update that ends the optimizer step (Trainer.optimizer_step).

A step is one optimizer update over an effective batch. Its gradient is the sum of the
micro-batches' token-summed gradients divided once by the step's real target count, so
splitting the same examples 8x1, 4x2, 2x4 or 1x8 gives the same update.
"""

from __future__ import annotations

from functools import partial

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
from mlx.utils import tree_flatten, tree_map


def token_sum_loss(model, inputs, targets, mask):
    """Cross-entropy summed over exactly the real target tokens, and their count."""
    logits = model(inputs)
    ce = nn.losses.cross_entropy(logits, targets) * mask
    return ce.astype(mx.float32).sum(), mask.sum()


def make_optimizer(name: str, learning_rate: float, weight_decay: float):
    if name == "adam":
        return optim.Adam(learning_rate=learning_rate)
    return optim.AdamW(learning_rate=learning_rate, weight_decay=weight_decay)


class StepFunctions:
    """Compiled micro-step (forward, backward, accumulate) and update for one model."""

    def __init__(self, model, optimizer, grad_clip: float = 0.0, compile: bool = True):
        self.model, self.optimizer, self.grad_clip = model, optimizer, grad_clip
        loss_and_grad = nn.value_and_grad(model, token_sum_loss)

        def micro(inputs, targets, mask, acc):
            (loss, ntoks), grad = loss_and_grad(model, inputs, targets, mask)
            if acc is not None:
                grad = tree_map(mx.add, grad, acc)
            return loss, ntoks, grad

        def update(grad, ntoks):
            grad = tree_map(lambda g: g / ntoks, grad)
            if grad_clip > 0:
                grad, _ = optim.clip_grad_norm(grad, grad_clip)
            optimizer.update(model, grad)

        state = [model.state, optimizer.state, mx.random.state]
        wrap = partial(mx.compile, inputs=state, outputs=state) if compile else (lambda f: f)
        self.micro, self.update = wrap(micro), wrap(update)

    def evaluate_loss(self, inputs, targets, mask):
        return token_sum_loss(self.model, inputs, targets, mask)


def all_finite(loss: mx.array, grad) -> bool:
    """True when the loss and every gradient entry are finite (checked before any update)."""
    sq = sum((mx.sum(g.astype(mx.float32) ** 2) for _, g in tree_flatten(grad)), mx.array(0.0))
    ok = mx.logical_and(mx.isfinite(loss), mx.isfinite(sq))
    return bool(ok.item())
