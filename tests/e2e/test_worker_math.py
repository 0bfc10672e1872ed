"""The training step's math: exact target counting and token-weighted accumulation."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten

from farensed.core import logs
from farensed.core.paths import Home
from farensed.worker import batching
from farensed.worker.grad_checkpoint import is_grad_checkpointed, set_grad_checkpoint
from farensed.worker.recipe import Recipe
from farensed.worker.step import StepFunctions
from worker_support import make_run, small_job


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    logs.configure(console=False)
    r = Recipe(make_run(tmp_path_factory.mktemp("math"), "r", small_job(8)), Home(tmp_path_factory.getbasetemp()),
            logs.get(), compile=True)
    r.setup()
    return r


def _flat(grad):
    return np.concatenate([np.array(g).ravel() for _, g in tree_flatten(grad)])


# Different splits sum the same float32 terms in a different order and with other matrix shapes
# (so other BLAS blockings): each entry differs by a few ulps of the terms summed into it, and
# the norm of the difference stays a few 1e-7 of the gradient's norm (3e-7 here). 1e-5 is
# two orders above that, and far below what a wrong split does (a lost or doubled example
# moves the gradient by ~10%; a mean instead of a sum over targets by ~50%).
SPLIT_TOLERANCE = 1e-5
SPLITS = ([8], [4, 4], [2, 2, 2, 2], [1] * 8, [3, 3, 2], [5, 1, 2], [1, 7])


def test_one_step_has_the_same_gradient_for_every_split_even_unequal_ones(run):
    # Given one effective batch of 8 examples
    idx = run.trainer.plan(0)[0][:8]
    assert len(idx) == 8
    # When its gradient is computed split as 8, 4+4, 2x4, 1x8 and unequal 3+3+2, 5+1+2, 1+7
    results = {tuple(s): run.trainer.gradient(idx, s) for s in SPLITS}
    # Then the summed loss, target count and gradient agree within SPLIT_TOLERANCE (relative)
    ref_loss, ref_n, ref_grad = results[(8,)]
    ref = _flat(ref_grad)
    for split, (loss, n, grad) in results.items():
        assert n.item() == ref_n.item() == run.trainer._targets[idx].sum()
        assert abs(loss.item() - ref_loss.item()) <= SPLIT_TOLERANCE * abs(ref_loss.item())
        assert np.linalg.norm(_flat(grad) - ref) <= SPLIT_TOLERANCE * np.linalg.norm(ref), split


def test_with_checkpointing_the_gradient_is_the_same(run):
    # Given one step's gradient without checkpointing
    idx = run.trainer.plan(0)[1]
    plain = _flat(run.trainer.gradient(idx, [4, 4])[2])
    # When it is recomputed with checkpointing on (the probe's other mode), split differently
    set_grad_checkpoint(run.model, True)
    try:
        fns = StepFunctions(run.model, run.optimizer, compile=False)
        acc = None
        for mb in batching.micro_batches(idx, [3, 3, 2]):
            arrays = batching.padded(run.trainer.train, mb, 256)
            _, _, acc = fns.micro(*(mx.array(a) for a in arrays), acc)
        mx.eval(acc)
    finally:
        set_grad_checkpoint(run.model, False)
    # Then it agrees within the same tolerance (recomputing a block repeats the same arithmetic)
    assert np.linalg.norm(_flat(acc) - plain) <= SPLIT_TOLERANCE * np.linalg.norm(plain)


def test_loss_counts_exactly_the_real_targets_whatever_the_padding(run):
    # Given the shortest and the longest training example
    data = run.trainer.train
    short, long = int(np.argmin(data.lengths)), int(np.argmax(data.lengths))
    assert data.lengths[short] < data.lengths[long]
    # When the short one is scored alone and padded beside the long one
    alone = run.trainer.gradient(np.array([short]), [1])
    inputs, targets, mask = batching.padded(data, np.array([short, long]), 256)
    loss_row = run.trainer.fns.evaluate_loss
    # Then its mask covers exactly its completion tokens (none past its end) ...
    assert mask[0].sum() == data.n_targets[short] == alone[1].item()
    assert mask[0, data.lengths[short] - 1:].sum() == 0
    # ... and the pair's loss is the sum of the two scored alone
    pair_loss, pair_n = loss_row(mx.array(inputs), mx.array(targets), mx.array(mask))
    solo_long = run.trainer.gradient(np.array([long]), [1])
    assert pair_n.item() == alone[1].item() + solo_long[1].item()
    assert abs(pair_loss.item() - alone[0].item() - solo_long[0].item()) <= 1e-4 * pair_loss.item()


def test_mask_prompt_leaves_the_prompt_out_of_the_loss(run):
    # Given a chat example whose prompt (system + user turns) is masked
    data = run.trainer.train
    i = 0
    # Then its targets start at the assistant reply: fewer targets than tokens
    assert 1 < data.offsets[i] < data.lengths[i]
    assert data.n_targets[i] == data.lengths[i] - data.offsets[i]


def test_epoch_order_is_deterministic_and_covers_every_example_once(run):
    # Given the plan for epoch 0 and 1, computed twice
    lengths = run.trainer._lengths
    a0, a1 = (batching.epoch_plan(lengths, 8, seed=0, epoch=e) for e in (0, 1))
    b0 = batching.epoch_plan(lengths, 8, seed=0, epoch=0)
    # Then each epoch has every example exactly once, in the same order when recomputed
    assert sorted(np.concatenate(a0).tolist()) == list(range(len(lengths)))
    assert all((x == y).all() for x, y in zip(a0, b0))
    # And epochs differ in order, while the last (smaller) batch is kept
    assert any(len(x) != len(y) or (x != y).any() for x, y in zip(a0, a1))
    assert min(len(s) for s in a0) == (len(lengths) % 8 or 8)


class _CountingMLP:
    """Counts forward calls of one block's MLP (each forward or recompute of the block calls it once)."""

    def __init__(self, model):
        self.mlp, self.base, self.calls = model.layers[-1].mlp, type(model.layers[-1].mlp), 0
        counter = self

        class Counting(self.base):
            def __call__(self, x):
                counter.calls += 1
                return super().__call__(x)

        self.mlp.__class__ = Counting

    def restore(self):
        self.mlp.__class__ = self.base


def _forward_calls_in_one_backward(run, switches: list[bool]) -> int:
    """Set checkpointing as in `switches` (in order), then count MLP forwards in one value_and_grad."""
    for on in switches:
        set_grad_checkpoint(run.model, on)
    counter = _CountingMLP(run.model)
    try:
        fns = StepFunctions(run.model, run.optimizer, compile=False)
        arrays = batching.padded(run.trainer.train, run.trainer.plan(0)[0][:2], 256)
        out = fns.micro(*(mx.array(a) for a in arrays), None)
        mx.eval(out)
        return counter.calls
    finally:
        counter.restore()
        set_grad_checkpoint(run.model, False)


def test_checkpointing_recomputes_each_block_once_however_often_it_is_switched_on(run):
    # Given the model without checkpointing: the block's forward runs once
    assert _forward_calls_in_one_backward(run, [False]) == 1
    # When checkpointing is switched on once, or on three times (a rebuild, a resume, a downshift)
    once, thrice = (_forward_calls_in_one_backward(run, s) for s in ([True], [True, True, True]))
    # Then the backward recomputes the block exactly once more (mlx-lm's patch would nest: 3, 4, ...)
    assert once == thrice == 2
    # And switched off again within the same process, the block runs once
    assert _forward_calls_in_one_backward(run, [True, False]) == 1
    assert not is_grad_checkpointed(run.model)


def test_a_job_asking_for_checkpointing_starts_with_it_on(tmp_path):
    # Given a job with memory.grad_checkpoint = true
    logs.configure(console=False)
    r = Recipe(make_run(tmp_path, "gc", small_job(2, memory={"grad_checkpoint": True})), Home(tmp_path), logs.get())
    # When the worker loads it, Then every block is checkpointed and the state says so
    r.setup()
    assert is_grad_checkpointed(r.model) and r.state.grad_checkpoint
    assert all(type(b).__name__.startswith("Checkpointed") for b in r.model.layers)
