"""The worker from start to end: the recipe's phases in order (worker/recipe.py), and each way a run
can end turned into its exit code (worker/exits.py)."""

from __future__ import annotations

from farensed.core.exitcodes import EXIT_OK
from farensed.core.paths import Home
from farensed.worker import distributed, exits
from farensed.worker.recipe import Recipe


def run_job(args, log) -> int:
    """Train the job in args.run_dir as this process's rank; the exit code."""
    run = None
    try:
        dist = distributed.init(args.distributed)
        if dist.size > 1:
            log = log.bind(rank=dist.rank)
        run = Recipe(args.run_dir.resolve(), Home.from_option(args.home), log, compile=not args.no_compile, dist=dist)
        run.bind_log(job=run.spec.name)
        log = run.log
        run.install_signals()  # a stop while loading exits EXIT_STOPPED at once: nothing to save yet
        run.setup()
        run.resume()
        run.train()
        run.finish()
        return EXIT_OK
    except Exception as e:
        how = exits.exit_for(e, run)
        if how is None:
            raise
        return exits.leave(run, log, e, how, args.run_dir)
