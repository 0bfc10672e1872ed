"""The references worker_bench.py compares farensed with, in one process (one model load):

- a bare compiled MLX loop over farensed's own batches (same examples, same micro-batches,
  same token-summed loss), with nothing else: no checks, no logging, one sync a step;
- the peak memory of `mlx_lm lora`'s own training step (its loss, its batches, its gradient
  checkpointing) on its widest batch, for each candidate batch size, with and without
  checkpointing: which `mlx_lm lora` configurations fit a budget.

    python -m bench.training.reference_loops RUN_DIR/job.toml --home H --steps N [--fit-batches 4,2,1]

Prints one JSON line. mlx-lm's checkpointing patches the block class for good, so the bare
loop and the unpatched measurements come first.
"""

from __future__ import annotations

import argparse
import json
import time
from functools import partial
from pathlib import Path
from statistics import median
from types import SimpleNamespace

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
from mlx.utils import tree_map

from farensed.core.datasets import load_splits
from farensed.core.jobfile import load_job
from farensed.core.paths import Home
from farensed.core.units import GIB
from farensed.worker import batching
from farensed.worker.model import apply_lora, load_base
from farensed.worker.run import tokenize_split
from farensed.worker.step import token_sum_loss

ROOT = Path(__file__).resolve().parents[2]



def bare_loop(model, spec, train, steps: int, warmup: int) -> dict:
    """farensed's steps in micro-batches of batch_size, through the plainest compiled loop."""
    opt = optim.AdamW(learning_rate=spec.training.learning_rate) if spec.training.optimizer == "adamw" else \
        optim.Adam(learning_rate=spec.training.learning_rate)
    loss_and_grad = nn.value_and_grad(model, token_sum_loss)
    state = [model.state, opt.state, mx.random.state]

    @partial(mx.compile, inputs=state, outputs=state)
    def micro(inputs, targets, mask, acc):
        (loss, n), grad = loss_and_grad(model, inputs, targets, mask)
        return loss, n, grad if acc is None else tree_map(mx.add, grad, acc)

    @partial(mx.compile, inputs=state, outputs=state)
    def update(grad, n):
        opt.update(model, tree_map(lambda g: g / n, grad))

    plan = batching.epoch_plan(train.lengths, spec.training.effective_batch, spec.training.seed, 0)
    mx.reset_peak_memory()
    times, examples = [], []
    for step in range(steps):
        idx, t0 = plan[step % len(plan)], time.perf_counter()
        acc, n = None, mx.array(0.0)
        for mb in batching.chunks(idx, spec.training.batch_size):
            x, y, m = (mx.array(a) for a in batching.padded(train, mb, spec.training.max_seq_length))
            _, k, acc = micro(x, y, m, acc)
            n = n + k
            mx.async_eval(acc, n)  # queue it: the next micro-batch is built while this one runs
        update(acc, n)
        mx.eval(state)
        times.append(time.perf_counter() - t0)
        examples.append(len(idx))
    # windows of `warmup` steps, as the others' log windows; the first compiles; the median
    # leaves out a late first use of a shape
    windows = [(sum(examples[i:i + warmup]), sum(times[i:i + warmup])) for i in range(warmup, steps, warmup)]
    rate = median(e / t for e, t in windows) if windows else sum(examples) / sum(times)
    return {"examples_per_sec": rate, "steps": steps, "peak_gib": mx.get_peak_memory() / GIB}


def mlx_lm_widest(tokenizer, data_dir: Path, spec, batch: int):
    """mlx-lm's own batch of `batch` examples with the most tokens, as `mlx_lm lora` builds it."""
    from mlx_lm.tuner.datasets import CacheDataset, load_dataset
    from mlx_lm.tuner.trainer import iterate_batches

    args = SimpleNamespace(data=str(data_dir), train=True, test=False, mask_prompt=spec.mask_prompt, hf_dataset=False)
    train, _, _ = load_dataset(args, tokenizer)
    batches = iterate_batches(CacheDataset(train), batch, spec.training.max_seq_length)
    return max(batches, key=lambda b: b[0].shape[1])


def mlx_lm_peak(model, batch, accumulation: int, lr: float) -> float:
    """Peak GiB of mlx-lm's compiled training step (a micro-step, then one with the update)."""
    from mlx_lm.tuner.trainer import default_loss

    opt = optim.AdamW(learning_rate=lr)
    loss_value_and_grad = nn.value_and_grad(model, default_loss)
    state = [model.state, opt.state, mx.random.state]

    @partial(mx.compile, inputs=state, outputs=state)
    def step(batch, prev_grad, do_update):
        (lvalue, toks), grad = loss_value_and_grad(model, *batch)
        if prev_grad is not None:
            grad = tree_map(lambda x, y: x + y, grad, prev_grad)
        if do_update:
            optimizer_grad = tree_map(lambda x: x / accumulation, grad) if accumulation > 1 else grad
            opt.update(model, optimizer_grad)
            grad = None
        return lvalue, toks, grad

    mx.clear_cache()
    mx.reset_peak_memory()
    _, _, grad = step(batch, None, accumulation == 1)
    mx.eval(state, grad)
    if grad is not None:
        mx.eval(state, step(batch, grad, True))
    return mx.get_peak_memory() / GIB


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("job", type=Path)
    ap.add_argument("--home", required=True)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=10, help="steps left out of the rate (compiling)")
    ap.add_argument("--fit-batches", default="", help="comma-separated mlx_lm batch sizes to measure")
    args = ap.parse_args()
    spec, home = load_job(args.job), Home.from_option(args.home)
    model, tokenizer = load_base(spec, home)
    apply_lora(model, spec)
    data_dir = home.resolve(spec.data)
    train = tokenize_split(load_splits(data_dir, spec.valid_fraction, spec.training.seed).train, tokenizer, spec)
    out = {"bare": bare_loop(model, spec, train, args.steps, args.warmup)}
    batches = [int(b) for b in args.fit_batches.split(",") if b]
    widest = {b: mlx_lm_widest(tokenizer, data_dir, spec, b) for b in batches}
    out["fit"] = {"widths": {b: int(widest[b][0].shape[1]) for b in batches}, "no_checkpoint": {}, "checkpoint": {}}
    for b in batches:
        out["fit"]["no_checkpoint"][b] = mlx_lm_peak(model, widest[b], spec.training.effective_batch // b,
                                                     spec.training.learning_rate)
    if batches:
        from mlx_lm.tuner.trainer import grad_checkpoint

        grad_checkpoint(model.layers[0])  # as `mlx_lm lora --grad-checkpoint` does
        for b in batches:
            out["fit"]["checkpoint"][b] = mlx_lm_peak(model, widest[b], spec.training.effective_batch // b,
                                                      spec.training.learning_rate)
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
