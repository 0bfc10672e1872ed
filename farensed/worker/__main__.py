"""`python -m farensed.worker RUN_DIR [--home DIR] [--distributed BACKEND]`: train the job in
RUN_DIR/job.toml (with --distributed, as one rank of several started by mlx.launch).

Exits with a code from farensed.core.exitcodes; the daemon classifies the end by it alone.
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
import traceback
from pathlib import Path

from farensed.core import logs
from farensed.core.errors import DataError, JobFileError
from farensed.core.exitcodes import (
    EXIT_BAD_JOB,
    EXIT_CRASH,
    EXIT_DIVERGED,
    EXIT_NO_SPACE,
    EXIT_OK,
    EXIT_OOM_EXHAUSTED,
    EXIT_OOM_RESTART,
    EXIT_PEER_LOST,
    EXIT_STOPPED,
)
from farensed.core.jobfile import load_job
from farensed.core.paths import Home
from farensed.memory import ladder


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
    run = None
    try:
        from farensed.worker import distributed
        from farensed.worker.disk import NoSpace
        from farensed.worker.finish import complete, finish
        from farensed.worker.memory import OomExhausted
        from farensed.worker.model import BadJob
        from farensed.worker.run import Run
        from farensed.worker.scoring import score
        from farensed.worker.trainer import Diverged, StopRequested

        dist = distributed.init(args.distributed)
        if dist.size > 1:
            log = log.bind(rank=dist.rank)
        run = Run(args.run_dir.resolve(), Home.from_option(args.home), log, compile=not args.no_compile, dist=dist)
        log = log.bind(job=run.spec.name)
        run.log = log
        run.install_signals()  # a stop while loading exits EXIT_STOPPED at once: nothing to save yet
        run.load()
        run.resume()
        run.note_loaded()
        pending = dist.from_root(lambda: run.scoring_pending)  # rank 0's run folder decides, for every rank
        if not pending:  # a restart after training ended scores what is left, no more
            run.train()
        if not dist.is_root:  # rank 0 writes the outputs and scores alone
            log.info("rank_done", steps=run.trainer.p.step)
            return EXIT_OK
        if not pending:
            finish(run)
        summary = complete(run, score(run))
        log.info("job_done", steps=summary.steps, best_val_loss=summary.best_val_loss, seconds=summary.seconds)
        return EXIT_OK
    except StopRequested as e:
        return _end(run, log, "stopped", str(e), EXIT_STOPPED)
    except (JobFileError, DataError, BadJob) as e:
        return _end(run, log, "failed", str(e), EXIT_BAD_JOB)
    except OomExhausted as e:
        return _end(run, log, "failed", str(e), EXIT_OOM_EXHAUSTED)
    except Diverged as e:
        return _end(run, log, "failed", str(e), EXIT_DIVERGED)
    except NoSpace as e:
        return _end(run, log, "stopped", str(e), EXIT_NO_SPACE)
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):  # the disk filled between checkpoints: pause, not crash
            return _end(run, log, "stopped", f"{e.filename or args.run_dir}: no disk space ({e.strerror});"
                        f" free some space, then farensectl resume", EXIT_NO_SPACE)
        raise
    except RuntimeError as e:
        if ladder.is_oom_message(str(e)):  # outside a step (loading, eval): restart lower
            return _end(run, log, "stopped", str(e).splitlines()[0], EXIT_OOM_RESTART)
        if run is not None and run.dist.size > 1 and distributed.is_peer_lost(str(e)):
            return _end(run, log, "stopped", f"another rank went away: {str(e).splitlines()[0]}", EXIT_PEER_LOST)
        traceback.print_exc()
        return _end(run, log, "failed", f"crash: {e}", EXIT_CRASH)


def _end(run, log, status: str, reason: str, code: int) -> int:
    log.warning("worker_exit", status=status, reason=reason, exit_code=code)
    if run is not None:
        try:
            run.write_state(status, reason)
        except Exception:  # the exit code still tells the daemon what happened
            log.exception("state_write_failed")
    return code


if __name__ == "__main__":
    sys.exit(main())
