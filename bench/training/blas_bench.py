"""Benchmark: the demo-model job through the farensed worker with the optimized system BLAS
preloaded (what the daemon does on Linux) and with mlx-cpu's bundled reference BLAS.

    .venv/bin/python -m bench.training.blas_bench [--steps 100]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from bench.training.worker_bench import run_farensed
from farensed.host.blas import (
    DISABLE_ENV,
    inspect,
    worker_env,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=100)
    args = ap.parse_args()
    info = inspect()
    if not info.needed or info.optimized is None:
        sys.exit(f"nothing to compare here: {info.in_use}")
    slow_env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"} | {DISABLE_ENV: "1"}
    with tempfile.TemporaryDirectory() as d:
        fast = run_farensed(Path(d), args.steps, worker_env(), "fast")
        slow = run_farensed(Path(d), args.steps, worker_env(slow_env), "slow")
    print(f"demo model, {args.steps} steps x batch 4\n")
    print(f"{'':34}{'tokens/s':>10}{'train s':>10}")
    for label, r in ((f"OpenBLAS preloaded ({info.optimized.name})", fast), ("mlx-cpu reference BLAS", slow)):
        print(f"{label:34}{r['tokens_per_sec']:>10.0f}{r['train_seconds']:>10.1f}")
    print(f"\nspeed-up: {fast['tokens_per_sec'] / slow['tokens_per_sec']:.1f}x")


if __name__ == "__main__":
    main()
