"""Benchmark: answering scored questions one at a time against in batches (worker.answering), for
the base model, the best and the final adapters, side by side in one run.

The same greedy answers as the scoring phase gives them (chat template, token limit twice the
reference's plus 16, or --max-tokens): for each model the questions are answered one at a time
(mlx-lm's generate) and in batches (mlx-lm's batch_generate), both timed after a warm-up; printed
are seconds, generated tokens per second, the speed-up and whether the answers are the same text.

    .venv/bin/python -m bench.scoring.batched_answers --run checkpoints/demo     # the demo's adapters, CPU
    .venv/bin/python -m bench.scoring.batched_answers --model /models/mistral-7b-4bit --json out.json

Without --run, "best" and "final" are LoRA adapters of the guide's shape (rank 8, the last 16
blocks, 7 modules) with seeded random weights, so a 7B-shaped model folder is all it needs.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

from farensed.core.datasets import read_jsonl
from farensed.core.jobfile import load_job, parse_job
from farensed.core.paths import REPO_ROOT as ROOT
from farensed.core.paths import Home
from farensed.scoring.questions import askable

TARGETS = ("base", "best", "final")


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "models" / "farense-tiny"), help="base model folder")
    ap.add_argument("--run", type=Path, help="a finished run folder: its job's LoRA and its best/final adapters")
    ap.add_argument("--data", type=Path, action="append",
                    help="question files (repeatable; default data/test.jsonl and data/valid.jsonl)")
    ap.add_argument("-n", type=int, default=64, help="questions (default 64)")
    ap.add_argument("--batch", type=int, default=32, help="sequences decoded together (default 32)")
    ap.add_argument("--max-tokens", type=int, default=0, help="longest answer; 0 = twice the reference's + 16")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    return ap.parse_args(argv)


def questions(files: list[Path], n: int):
    examples = [e for f in files for e in read_jsonl(f)]
    return askable(examples, ", ".join(map(str, files))).questions[:n]


def model_and_targets(args):
    """The model with LoRA layers, and each target's adapter weights."""
    import mlx.core as mx
    from mlx.utils import tree_map

    from farensed.worker.answering import target_weights
    from farensed.worker.model import adapter_weights, apply_lora, load_base

    spec = load_job(args.run / "job.toml") if args.run else parse_job(
        f'schema_version = 1\nname = "bench"\nmodel = "{args.model}"\ndata = "data"\n')
    spec.model = args.model
    model, tok = load_base(spec, Home(ROOT))
    apply_lora(model, spec)
    initial = adapter_weights(model)
    if args.run:
        return model, tok, target_weights(args.run, initial, TARGETS)
    mx.random.seed(0)
    fake = {k: v + 0.02 * mx.random.normal(v.shape).astype(v.dtype) for k, v in initial.items()}
    return model, tok, {"base": initial, "best": fake, "final": tree_map(lambda v: v * 1.5, fake)}


def timed(fn, *a):
    import mlx.core as mx

    mx.synchronize()
    t0 = time.perf_counter()
    out = fn(*a)
    mx.synchronize()
    return out, time.perf_counter() - t0


def main(argv=None) -> int:
    from farensed.worker.answering import batched, one_at_a_time, prompt_ids

    args = parse(argv)
    files = args.data or [ROOT / "data" / "test.jsonl", ROOT / "data" / "valid.jsonl"]
    qs = questions(files, args.n)
    model, tok, weights = model_and_targets(args)
    model.eval()
    prompts = [prompt_ids(tok, q.messages) for q in qs]
    limits = [args.max_tokens or 2 * len(tok.encode(q.reference, add_special_tokens=False)) + 16 for q in qs]
    batched(model, tok, prompts[:4], [8] * 4, batch=args.batch)  # warm-up: kernels compiled, caches made
    one_at_a_time(model, tok, prompts[:2], [8] * 2)
    rows = []
    for target in TARGETS:
        model.load_weights(list(weights[target].items()), strict=False)
        alone, t_alone = timed(one_at_a_time, model, tok, prompts, limits)
        together, t_batch = timed(batched, model, tok, prompts, limits, None, args.batch)
        tokens = sum(len(tok.encode(a, add_special_tokens=False)) for a in alone)
        rows.append({"target": target, "questions": len(qs), "tokens": tokens, "one_at_a_time_s": round(t_alone, 3),
                     "batched_s": round(t_batch, 3), "one_at_a_time_tok_s": round(tokens / t_alone, 1),
                     "batched_tok_s": round(tokens / t_batch, 1), "speedup": round(t_alone / t_batch, 2),
                     "same_answers": sum(a == b for a, b in zip(alone, together))})
    report(args, rows)
    return 0


def report(args, rows: list[dict]) -> None:
    import mlx.core as mx

    device = str(mx.default_device())
    print(f"model {args.model}; adapters {args.run or 'random, guide-shaped'}; {rows[0]['questions']} questions;"
          f" batch {args.batch}; {device} on {platform.machine()} {platform.processor() or ''}".rstrip())
    head = f"{'model':<6} {'one at a time':>14} {'tok/s':>8} {'batched':>9} {'tok/s':>8} {'speed-up':>9} {'same':>6}"
    print(head)
    for r in rows:
        print(f"{r['target']:<6} {r['one_at_a_time_s']:>13.2f}s {r['one_at_a_time_tok_s']:>8.0f}"
              f" {r['batched_s']:>8.2f}s {r['batched_tok_s']:>8.0f} {r['speedup']:>8.2f}x"
              f" {r['same_answers']:>3}/{r['questions']}")
    total_a, total_b = sum(r["one_at_a_time_s"] for r in rows), sum(r["batched_s"] for r in rows)
    print(f"{'all':<6} {total_a:>13.2f}s {'':>8} {total_b:>8.2f}s {'':>8} {total_a / total_b:>8.2f}x")
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, "device": device, "batch": args.batch, "rows": rows},
                                        indent=2))


if __name__ == "__main__":
    sys.exit(main())
