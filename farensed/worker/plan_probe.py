"""`python -m farensed.worker.plan_probe RUN_DIR [--home DIR] [--steps N]`: measure a job before it
is submitted (farensectl plan): load it as the worker would, run one eval and one answer probe,
take a few real optimizer steps and the epoch's largest step, and print one PlanEstimate JSON line.

RUN_DIR is a throw-away folder holding job.toml; the client removes it afterwards. Nothing is
checkpointed and nothing lands in the home.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from farensed.core import job_time, logs
from farensed.core.errors import FarensedError
from farensed.core.exitcodes import EXIT_BAD_JOB
from farensed.core.formats import Cursor, PlanEstimate
from farensed.core.paths import Home
from farensed.worker.entry import run_mlx_command

STEPS = 3  # timed steps after the first (which compiles)


def parse(argv):
    ap = argparse.ArgumentParser(prog="python -m farensed.worker.plan_probe", description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path, help="a throw-away folder holding job.toml")
    ap.add_argument("--home", help="farensed home (default $FARENSED_HOME or the repository)")
    ap.add_argument("--steps", type=int, default=STEPS, help=f"timed steps after the first (default {STEPS})")
    return ap.parse_args(argv)


def measure(args, out=sys.stdout) -> None:
    import mlx.core as mx
    import psutil

    from farensed.worker.recipe import Recipe

    logs.configure(console=False)
    run = Recipe(args.run_dir.resolve(), Home.from_option(args.home), logs.get(plan=str(args.run_dir)))
    run.setup()
    run.resume()
    tr = run.trainer
    load_seconds = time.time() - psutil.Process().create_time()  # imports, loading, tokenizing
    t = time.monotonic()
    tr.evaluate()
    eval_seconds = time.monotonic() - t if tr.valid is not None and tr.valid.tokens else 0.0
    probe_seconds = run.probe.run(run.model).seconds if run.probe.sets else 0.0
    first, step_seconds = _steps(tr, max(args.steps, 1))
    _largest_step(tr)
    per_answer = probe_seconds / run.probe.questions if run.probe.questions else 0.0
    evals = len(job_time.eval_steps(tr.total, run.spec.cadence.eval_every)) if eval_seconds or probe_seconds else 0
    estimate = PlanEstimate(
        steps_per_epoch=tr.per_epoch, total_steps=tr.total, evals=evals, step_seconds=round(step_seconds, 4),
        eval_seconds=round(eval_seconds, 3), probe_seconds=round(probe_seconds, 3),
        scoring_seconds=round(job_time.scoring_seconds(per_answer, run.scored_questions), 1),
        peak_memory_gb=round(mx.get_peak_memory() / 1024**3, 4),
        load_seconds=round(load_seconds + max(first - step_seconds, 0.0), 1), measured_steps=args.steps + 2,
        source="plan", at=time.time())
    out.write(estimate.model_dump_json() + "\n")


def _steps(tr, n: int) -> tuple[float, float]:
    """The first step's time (it compiles) and the mean of the next n, scaled from their tokens to
    the epoch's mean step (the first steps may be shorter or longer than most)."""
    times = []
    for _ in range(n + 1):
        t = time.monotonic()
        tr.optimizer_step()
        times.append(time.monotonic() - t)
    steps = tr.step_lengths(0)
    measured = sum(sum(s) for s in steps[1:n + 1]) / max(len(steps[1:n + 1]), 1)
    mean = sum(sum(s) for s in steps) / len(steps)
    return times[0], sum(times[1:]) / n * (mean / measured if measured else 1.0)


def _largest_step(tr) -> None:
    """The epoch's step with the most tokens, once: the peak memory the job will reach."""
    steps = tr.step_lengths(0)
    tr.progress.cursor = Cursor(epoch=0, index=max(range(len(steps)), key=lambda i: sum(steps[i])))
    tr.optimizer_step()


def main(argv=None) -> int:
    args = parse(argv)
    try:
        return run_mlx_command(measure, args, "measuring the job")
    except FarensedError as e:  # a bad job file, data or model: one line, no traceback
        print(e, file=sys.stderr)
        return EXIT_BAD_JOB


if __name__ == "__main__":
    sys.exit(main())
