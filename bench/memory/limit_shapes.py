"""Experiment: MLX's own memory throttle (mx.set_memory_limit) against the host running ahead.
For each limit and shape: two micro-batches queued as the worker queues them ("pair") and
one at a time ("sync"): steady peak and seconds per micro-batch.
    python -m bench.memory.limit_shapes MODEL_DIR LIMITS_GIB(0=none) SHAPES(RxW,...)"""
import sys
import time
from pathlib import Path

import mlx.core as mx

from bench.memory.memory_map import arrays
from farensed.core.jobfile import parse_job
from farensed.core.paths import Home
from farensed.core.units import GIB
from farensed.worker.model import apply_lora, load_base
from farensed.worker.step import StepFunctions, make_optimizer

mp = Path(sys.argv[1])
limits = [float(x) for x in sys.argv[2].split(",")]
shapes = [tuple(map(int, s.split("x"))) for s in sys.argv[3].split(",")]
spec = parse_job(f'name = "map"\nmodel = "{mp}"\ndata = "{mp}"\n[training]\nbatch_size = 4\n'
                 f'max_seq_length = 512\n[lora]\nnum_layers = 16\n')
model, tok = load_base(spec, Home.from_option(str(mp.parent)))
apply_lora(model, spec)
vocab = int(model.args.vocab_size)
opt = make_optimizer("adamw", 2e-4, 0.0)
opt.init(model.trainable_parameters())
fns = StepFunctions(model, opt, 0.0, True)
mx.eval(model.parameters(), opt.state)
print("weights GiB", mx.get_active_memory() / GIB, flush=True)


def micro_pair(b, queued: bool):
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


def pair(b):
    return micro_pair(b, True)


def sync(b):
    return micro_pair(b, False)


batches = {}
for r, w in shapes:
    b = arrays(r, w, vocab, 1)
    mx.eval(b)
    batches[r, w] = b
    t0 = time.perf_counter()
    pair(b)
    print(f"compiled {r}x{w} in {time.perf_counter() - t0:.1f} s", flush=True)
for lim in limits:
    mx.set_memory_limit(int(lim * GIB) if lim else 10**13)
    for r, w in shapes:
        for name, fn in (("pair", pair), ("sync", sync)):
            res = [fn(batches[r, w]) for _ in range(3)]
            print(f"limit {lim:6.2f} {name} {r}x{w} tokens {r * w:5d} peak {max(p for p, _ in res) / GIB:7.3f} GiB"
                  f"  s/micro {min(t for _, t in res):.4f}", flush=True)
