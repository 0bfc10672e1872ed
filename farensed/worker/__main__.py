"""`python -m farensed.worker RUN_DIR [--home DIR] [--distributed BACKEND]`: train the job in
RUN_DIR/job.toml (with --distributed, as one rank of several started by mlx.launch).

Exits with a code from farensed.core.exitcodes (worker/exits.py maps each way a run ends to its code);
the daemon classifies the end by it alone. The run itself is worker/flow.py's and worker/recipe.py's.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from farensed.core import logs
from farensed.core.exitcodes import EXIT_STOPPED
from farensed.core.jobfile import load_job


def parse(argv):
    ap = argparse.ArgumentParser(prog="python -m farensed.worker", description=__doc__)
    ap.add_argument("run_dir", type=Path, help="the job's output folder, holding job.toml")
    ap.add_argument("--home", help="farensed home (default $FARENSED_HOME or the repository)")
    ap.add_argument("--no-compile", action="store_true", help="do not mx.compile the step (debugging)")
    ap.add_argument("--distributed", metavar="BACKEND", choices=["ring", "jaccl", "mpi", "nccl", "any"],
                    help="one rank of a data-parallel job (mx.distributed backend), as mlx.launch starts it")
    return ap.parse_args(argv)


def budget_environment(run_dir: Path, env) -> None:
    """A job with a memory budget runs with MLX's CUDA graphs off, unless the environment already
    says (MLX_USE_CUDA_GRAPHS). Under a memory limit MLX makes the host wait in mid-graph, and the
    graphs it then builds miss its cache: on an H200, the guide's steps (same micro-batches) ran
    under a 12 GiB limit at 0.84-0.88x of no limit with graphs, at 0.92x without them (no limit,
    with graphs, being the reference; bench/memory/limit_steps.py). It changes nothing off CUDA. A job file
    that does not parse is left to the run, which reports it."""
    try:
        budget = load_job(run_dir / "job.toml").memory.budget_gb
    except Exception:
        return
    if budget:
        env.setdefault("MLX_USE_CUDA_GRAPHS", "0")


def main(argv=None) -> int:
    # A stop while still importing or loading has nothing to save: leave at once. Set first, because a
    # rank started by mlx.launch inherits the launcher's ignored SIGTERM (the daemon's stop would be lost).
    signal.signal(signal.SIGTERM, lambda signum, frame: os._exit(EXIT_STOPPED))
    args = parse(argv)
    logs.configure(console=False)
    log = logs.get(run_dir=str(args.run_dir))
    budget_environment(args.run_dir, os.environ)  # before MLX loads
    from farensed.worker.flow import run_job  # imports mlx

    return run_job(args, log)


if __name__ == "__main__":
    sys.exit(main())
