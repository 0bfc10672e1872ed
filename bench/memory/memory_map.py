"""Peak memory and time of the worker's micro-step by shape (rows x padded width), with and
without gradient checkpointing: what a memory model has to predict, measured directly.

Each shape runs three times on random token ids (memory does not depend on their values):
the first call compiles, the second gives the steady peak and a time, the third a time. The
first call's peak is kept too: the worker's probe sees first calls. Then a few steps of two
micro-batches, queued (async) as the worker queues them, against each alone.

    python -m bench.memory.memory_map MODEL_DIR [--widths 128,256,384,512] [--rows 1,2,3,4] [--extra 3x352,4x272]
        [--lora-layers 16] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import mlx.core as mx

from farensed.core.jobfile import parse_job
from farensed.core.paths import Home
from farensed.core.units import GIB
from farensed.worker.grad_checkpoint import set_grad_checkpoint
from farensed.worker.model import apply_lora, load_base
from farensed.worker.step import StepFunctions, make_optimizer

ROOT = Path(__file__).resolve().parents[2]



def arrays(rows: int, width: int, vocab: int, seed: int):
    key = mx.random.key(seed)
    ids = mx.random.randint(0, vocab, (rows, width + 1), key=key)
    return ids[:, :-1], ids[:, 1:], mx.ones((rows, width), dtype=mx.float32)


def call(fns, batch, acc=None):
    mx.reset_peak_memory()
    t0 = time.perf_counter()
    out = fns.micro(*batch, acc)
    mx.eval(out)
    return mx.get_peak_memory(), time.perf_counter() - t0, out


def shape_row(fns, rows, width, vocab, gc):
    batch = arrays(rows, width, vocab, rows * 1000 + width)
    mx.eval(batch)
    active = mx.get_active_memory()
    first, t1, _ = call(fns, batch)
    steady, t2, _ = call(fns, batch)
    _, t3, _ = call(fns, batch)
    return {"gc": gc, "rows": rows, "width": width, "tokens": rows * width, "active_gib": active / GIB,
            "first_gib": first / GIB, "peak_gib": steady / GIB, "compile_s": t1, "seconds": min(t2, t3)}


def queued(fns, shapes, vocab):
    """Micro-batches of one step queued back to back (async), as the worker runs them."""
    mx.reset_peak_memory()
    t0 = time.perf_counter()
    acc = None
    for i, (r, w) in enumerate(shapes):
        batch = arrays(r, w, vocab, 7 + i)
        _, _, acc = fns.micro(*batch, acc)
        mx.async_eval(acc)
    mx.eval(acc)
    return {"shapes": shapes, "peak_gib": mx.get_peak_memory() / GIB, "seconds": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path)
    ap.add_argument("--widths", default="128,256,384,512")
    ap.add_argument("--rows", default="1,2,3,4")
    ap.add_argument("--extra", default="", help="more shapes, e.g. 3x352,4x272")
    ap.add_argument("--lora-layers", type=int, default=16)
    ap.add_argument("--modes", default="plain,gc")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    spec = parse_job(f'name = "map"\nmodel = "{a.model}"\ndata = "{a.model}"\n[training]\nbatch_size = 4\n'
                     f'max_seq_length = 512\n[lora]\nnum_layers = {a.lora_layers}\n')
    model, tok = load_base(spec, Home.from_option(str(a.model.parent)))
    apply_lora(model, spec)
    vocab = int(model.args.vocab_size) if hasattr(model, "args") else len(tok.vocab)
    opt = make_optimizer("adamw", 2e-4, 0.0)
    shapes = [(r, w) for w in map(int, a.widths.split(",")) for r in map(int, a.rows.split(","))]
    shapes += [tuple(map(int, s.split("x"))) for s in a.extra.split(",") if s]
    shapes.sort(key=lambda s: (s[0] * s[1], s[1]))
    out = {"device": str(mx.default_device()), "mlx": mx.__version__, "model": str(a.model),
           "weights_gib": mx.get_active_memory() / GIB, "shapes": [], "queued": []}
    print(f"{'mode':5} {'rows':>4} {'width':>5} {'tokens':>6} {'first GiB':>9} {'peak GiB':>9} {'s':>7}"
          f" {'compile s':>9}")
    for gc in [m == "gc" for m in a.modes.split(",")]:
        set_grad_checkpoint(model, gc)
        fns = StepFunctions(model, opt, 0.0, True)
        for rows, width in shapes:
            r = shape_row(fns, rows, width, vocab, gc)
            out["shapes"].append(r)
            print(f"{'gc' if gc else 'plain':5} {rows:4} {width:5} {rows * width:6} {r['first_gib']:9.3f}"
                  f" {r['peak_gib']:9.3f} {r['seconds']:7.4f} {r['compile_s']:9.2f}", flush=True)
            if a.json:
                a.json.write_text(json.dumps(out, indent=1))
        for step in ([(4, 256), (4, 256)], [(2, 512), (2, 512)], [(1, 512)] * 4, [(3, 384), (3, 384), (2, 384)]):
            q = queued(fns, step, vocab)
            q["gc"] = gc
            out["queued"].append(q)
            print(f"queued {'gc' if gc else 'plain'} {step}: peak {q['peak_gib']:.3f} GiB in {q['seconds']:.3f} s",
                  flush=True)
        if a.json:
            a.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
