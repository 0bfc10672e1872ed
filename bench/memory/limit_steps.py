"""Experiment: steps of the real data (4+4 micro-batches, two in flight as the worker runs them)
under MLX memory limits, widths padded to 32 or coarser: is the budgeted slowdown the allocator
(cache eviction -> cudaFree/cudaMallocManaged) rather than the split?
    python -m bench.memory.limit_steps MODEL_DIR DATA.jsonl STEPS VARIANTS(limit:pad,...)"""
import math
import sys
import time
from pathlib import Path

import mlx.core as mx
import numpy as np

from farensed.core.datasets import load_splits
from farensed.core.jobfile import parse_job
from farensed.core.paths import Home
from farensed.core.units import GIB
from farensed.worker import batching
from farensed.worker.model import apply_lora, load_base
from farensed.worker.run import tokenize_split
from farensed.worker.step import StepFunctions, make_optimizer

mp, data, nsteps = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
variants = [(float(v.split(":")[0]), int(v.split(":")[1]), v.endswith(":s")) for v in sys.argv[4].split(",")]
spec = parse_job(f'name = "x"\nmodel = "{mp}"\ndata = "{data}"\nmask_prompt = true\n[training]\nbatch_size = 4\n'
                 f'grad_accumulation = 2\nmax_seq_length = 512\n[lora]\nnum_layers = 16\n')
model, tok = load_base(spec, Home.from_option(str(mp.parent)))
apply_lora(model, spec)
opt = make_optimizer("adamw", 2e-4, 0.0)
opt.init(model.trainable_parameters())
fns = StepFunctions(model, opt, 0.0, True)
mx.eval(model.parameters(), opt.state)
splits = load_splits(data, 0.1, 0)
train = tokenize_split(splits.train, tok, spec)
plan = batching.epoch_plan(train.lengths, 8, 0, 0)[:nsteps]


def step_batches(pad, by_width=False):
    out = []
    order = sorted(plan, key=lambda i: int(train.lengths[i].max())) if by_width else plan
    for idx in order:
        mbs = []
        for mb in batching.micro_batches(idx, [4, 4]):
            x, y, m = batching.padded(train, mb, 512)
            w = min(pad * math.ceil(x.shape[1] / pad), 512)
            grow = w - x.shape[1]
            x, y, m = (np.pad(a, ((0, 0), (0, grow))) for a in (x, y, m))
            mbs.append((mx.array(x), mx.array(y), mx.array(m)))
        out.append(mbs)
    return out


def run(steps):
    t0 = time.perf_counter()
    peak = 0
    for mbs in steps:
        mx.reset_peak_memory()
        acc = None
        for b in mbs:
            running = acc
            _, _, acc = fns.micro(*b, acc)
            mx.async_eval(acc)
            if running is not None:
                mx.eval(running)
        mx.eval(acc)
        fns.update(acc, mx.array(1000.0))
        mx.eval(model.trainable_parameters(), opt.state)
        peak = max(peak, mx.get_peak_memory())
    return time.perf_counter() - t0, peak


widths = sorted({b[0].shape[1] for s in step_batches(32) for b in s})
print(f"{len(plan)} steps, widths {widths}", flush=True)
for lim, pad, by_width in variants:
    steps = step_batches(pad, by_width)
    mx.set_memory_limit(10**13)
    run(steps)  # compile every shape, fill the cache
    mx.set_memory_limit(int(lim * GIB) if lim else 10**13)
    mx.clear_cache()
    run(steps)  # once more at this limit
    t, peak = run(steps)
    tokens = sum(b[0].size for s in steps for b in s)
    order = " steps by width" if by_width else ""
    print(f"limit {lim:6.2f} pad {pad:3d}{order}: {len(steps) * 8 / t:6.2f} examples/s, peak {peak / GIB:6.2f} GiB,"
          f" cache {mx.get_cache_memory() / GIB:6.2f} GiB, padded tokens {tokens}", flush=True)
