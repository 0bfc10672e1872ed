"""Experiment: steps of the real data (4+4 micro-batches, two in flight as the worker runs them)
under MLX memory limits, widths padded to 32 or coarser: is the budgeted slowdown the allocator
(cache eviction -> cudaFree/cudaMallocManaged) rather than the split?

    .venv/bin/python -m bench.memory.limit_steps MODEL_DIR DATA.jsonl STEPS VARIANTS
    e.g. ... models/farense-tiny data/train.jsonl 4 0:32,0.05:32,0.05:128:s

A variant is LIMIT_GIB:PAD, with :s to run the steps sorted by width; a limit of 0 = none.
Times the worker's compiled micro-step directly, through bench/worker_internals.py."""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import mlx.core as mx
import numpy as np

from bench import worker_internals
from farensed.core.datasets import load_splits
from farensed.core.jobfile import parse_job
from farensed.core.paths import Home
from farensed.core.units import GIB

batching = worker_internals.batching


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path, help="an mlx-lm model folder")
    ap.add_argument("data", type=Path, help="a .jsonl file (or a folder with train/valid.jsonl)")
    ap.add_argument("steps", type=int, help="steps of the first epoch's plan to run")
    ap.add_argument("variants", help="comma-separated LIMIT_GIB:PAD[:s], e.g. 0:32,12:32,12:128:s")
    return ap.parse_args(argv)


class Bench:
    """The guide's job (4 x 2, 512 tokens, 16 LoRA layers) on the data, and the worker's step over it."""

    def __init__(self, mp: Path, data: Path, nsteps: int):
        spec = parse_job(f'name = "x"\nmodel = "{mp}"\ndata = "{data}"\nmask_prompt = true\n[training]\n'
                         f'batch_size = 4\ngrad_accumulation = 2\nmax_seq_length = 512\n[lora]\nnum_layers = 16\n')
        self.model, tok = worker_internals.load_base(spec, Home.from_option(str(mp.parent)))
        worker_internals.apply_lora(self.model, spec)
        self.opt = worker_internals.make_optimizer("adamw", 2e-4, 0.0)
        self.opt.init(self.model.trainable_parameters())
        self.fns = worker_internals.StepFunctions(self.model, self.opt, 0.0, True)
        mx.eval(self.model.parameters(), self.opt.state)
        self.train = worker_internals.tokenize_split(load_splits(data, 0.1, 0).train, tok, spec)
        full = [s for s in batching.epoch_plan(self.train.lengths, 8, 0, 0) if len(s) == 8]  # 4+4 each
        self.plan = full[:nsteps]

    def step_batches(self, pad: int, by_width: bool = False):
        out = []
        plan = self.plan
        order = sorted(plan, key=lambda i: int(self.train.lengths[i].max())) if by_width else plan
        for idx in order:
            mbs = []
            for mb in batching.micro_batches(idx, [4, 4]):
                x, y, m = batching.padded(self.train, mb, 512)
                grow = min(pad * math.ceil(x.shape[1] / pad), 512) - x.shape[1]
                x, y, m = (np.pad(a, ((0, 0), (0, grow))) for a in (x, y, m))
                mbs.append((mx.array(x), mx.array(y), mx.array(m)))
            out.append(mbs)
        return out

    def run(self, steps):
        t0 = time.perf_counter()
        peak = 0
        for mbs in steps:
            mx.reset_peak_memory()
            acc = None
            for b in mbs:
                running = acc
                _, _, acc = self.fns.micro(*b, acc)
                mx.async_eval(acc)
                if running is not None:
                    mx.eval(running)
            mx.eval(acc)
            self.fns.update(acc, mx.array(1000.0))
            mx.eval(self.model.trainable_parameters(), self.opt.state)
            peak = max(peak, mx.get_peak_memory())
        return time.perf_counter() - t0, peak


def main(argv=None) -> None:
    a = parse(argv)
    variants = [(float(v.split(":")[0]), int(v.split(":")[1]), v.endswith(":s")) for v in a.variants.split(",")]
    b = Bench(a.model, a.data, a.steps)
    widths = sorted({mb[0].shape[1] for s in b.step_batches(32) for mb in s})
    print(f"{len(b.plan)} steps, widths {widths}", flush=True)
    for lim, pad, by_width in variants:
        steps = b.step_batches(pad, by_width)
        mx.set_memory_limit(10**13)
        b.run(steps)  # compile every shape, fill the cache
        mx.set_memory_limit(int(lim * GIB) if lim else 10**13)
        mx.clear_cache()
        b.run(steps)  # once more at this limit
        t, peak = b.run(steps)
        tokens = sum(mb[0].size for s in steps for mb in s)
        order = " steps by width" if by_width else ""
        print(f"limit {lim:6.2f} pad {pad:3d}{order}: {len(steps) * 8 / t:6.2f} examples/s,"
              f" peak {peak / GIB:6.2f} GiB, cache {mx.get_cache_memory() / GIB:6.2f} GiB, padded tokens {tokens}",
              flush=True)


if __name__ == "__main__":
    main()
