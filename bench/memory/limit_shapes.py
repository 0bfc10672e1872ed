"""Experiment: MLX's own memory throttle (mx.set_memory_limit) against the host running ahead.
For each limit and shape: two micro-batches queued as the worker queues them ("pair") and
one at a time ("sync"): steady peak and seconds per micro-batch.

    .venv/bin/python -m bench.memory.limit_shapes MODEL_DIR LIMITS_GIB SHAPES
    e.g. ... models/farense-tiny 0,0.05 2x128,4x256      (a limit of 0 = none)

Times the worker's compiled micro-step directly, through bench/worker_internals.py."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import mlx.core as mx

from bench import worker_internals
from bench.memory.memory_map import arrays
from farensed.core.jobfile import parse_job
from farensed.core.paths import Home
from farensed.core.units import GIB


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path, help="an mlx-lm model folder")
    ap.add_argument("limits", help="comma-separated memory limits in GiB, 0 = no limit")
    ap.add_argument("shapes", help="comma-separated ROWSxWIDTH micro-batch shapes, e.g. 2x128,4x256")
    return ap.parse_args(argv)


def step_functions(mp: Path):
    """The model with LoRA on 16 layers and the worker's compiled micro-step over it."""
    spec = parse_job(f'name = "map"\nmodel = "{mp}"\ndata = "{mp}"\n[training]\nbatch_size = 4\n'
                     f'max_seq_length = 512\n[lora]\nnum_layers = 16\n')
    model, _ = worker_internals.load_base(spec, Home.from_option(str(mp.parent)))
    worker_internals.apply_lora(model, spec)
    opt = worker_internals.make_optimizer("adamw", 2e-4, 0.0)
    opt.init(model.trainable_parameters())
    fns = worker_internals.StepFunctions(model, opt, 0.0, True)
    mx.eval(model.parameters(), opt.state)
    print("weights GiB", mx.get_active_memory() / GIB, flush=True)
    return fns, int(model.args.vocab_size)


def micro_pair(fns, b, queued: bool):
    """Two micro-batches, the second queued while the first runs (queued) or after it finished."""
    mx.reset_peak_memory()
    t0 = time.perf_counter()
    _, _, acc = fns.micro(*b, None)
    (mx.async_eval if queued else mx.eval)(acc)
    out = fns.micro(*b, acc)
    if queued:
        mx.async_eval(out)
        mx.eval(acc)
    mx.eval(out)
    return mx.get_peak_memory(), (time.perf_counter() - t0) / 2


def main(argv=None) -> None:
    a = parse(argv)
    limits = [float(x) for x in a.limits.split(",")]
    shapes = [tuple(map(int, s.split("x"))) for s in a.shapes.split(",")]
    fns, vocab = step_functions(a.model)
    batches = {}
    for r, w in shapes:
        b = arrays(r, w, vocab, 1)
        mx.eval(b)
        batches[r, w] = b
        t0 = time.perf_counter()
        micro_pair(fns, b, True)
        print(f"compiled {r}x{w} in {time.perf_counter() - t0:.1f} s", flush=True)
    for lim in limits:
        mx.set_memory_limit(int(lim * GIB) if lim else 10**13)
        for r, w in shapes:
            for name, queued in (("pair", True), ("sync", False)):
                res = [micro_pair(fns, batches[r, w], queued) for _ in range(3)]
                print(f"limit {lim:6.2f} {name} {r}x{w} tokens {r * w:5d}"
                      f" peak {max(p for p, _ in res) / GIB:7.3f} GiB  s/micro {min(t for _, t in res):.4f}",
                      flush=True)


if __name__ == "__main__":
    main()
