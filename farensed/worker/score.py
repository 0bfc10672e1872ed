"""`python -m farensed.worker.score RUN_DIR [--target T]... [--data FILE] [-n N]`: answer held-out
questions with a run's base model and adapters and score them (farensectl score).

Writes a ScoringPlan JSON line, then one answers.jsonl line (ScoredQuestion) per question, to
stdout as each is done; the client never imports mlx. Exit codes as farensed.worker.infer.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from farensed.core.errors import FarensedError
from farensed.core.exitcodes import EXIT_BAD_JOB
from farensed.core.formats import JOB_FILE, TARGETS, ScoringPlan
from farensed.core.jobfile import load_job
from farensed.core.paths import Home
from farensed.scoring.questions import held_out
from farensed.worker.entry import run_mlx_command


def parse(argv):
    ap = argparse.ArgumentParser(prog="python -m farensed.worker.score", description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path, help="the job's run folder (job.toml, adapters)")
    ap.add_argument("--home", help="farensed home (default $FARENSED_HOME or the repository)")
    ap.add_argument("--target", dest="targets", action="append", choices=TARGETS,
                    help="a model to score (repeatable; default base, best and final)")
    ap.add_argument("--data", type=Path, help="a .jsonl of questions (default: the job's held-out examples)")
    ap.add_argument("-n", type=int, help="score the first N questions of the fixed order (default [evaluate] examples)")
    return ap.parse_args(argv)


def score_all(args, out=sys.stdout) -> None:
    from farensed.worker.answering import Answerer, target_weights
    from farensed.worker.model import adapter_weights, apply_lora, load_base

    home, run_dir = Home.from_option(args.home), args.run_dir.resolve()
    spec = load_job(run_dir / JOB_FILE)
    held = held_out(spec, home, None, args.data)
    n = args.n or spec.evaluate.examples  # by default the final scoring's questions
    questions = held.questions[:n] if n else held.questions
    model, tokenizer = load_base(spec, home)
    apply_lora(model, spec)
    targets = args.targets or list(TARGETS)
    answerer = Answerer(model, tokenizer, target_weights(run_dir, adapter_weights(model), targets),
                        spec.evaluate.max_tokens)
    for start in range(0, len(questions), answerer.batch):
        rows = answerer.score(questions[start:start + answerer.batch])
        if start == 0:  # the plan, with an estimate from the first batch's time
            _write(out, ScoringPlan(examples=len(questions), available=len(held.questions), prompts=0,
                                    data=held.data, estimated_seconds=round(rows[0].seconds * len(questions), 3)))
        for row in rows:
            _write(out, row)
    if not questions:
        _write(out, ScoringPlan(examples=0, available=0, prompts=0, data=held.data, estimated_seconds=0.0))
    if held.unaskable:
        print(f"{held.unaskable} example(s) of {held.data} have no question to ask (text, or an empty prompt):"
              " not scored", file=sys.stderr)


def _write(out, model) -> None:
    out.write(model.model_dump_json() + "\n")
    out.flush()


def main(argv=None) -> int:
    args = parse(argv)
    try:
        return run_mlx_command(score_all, args, "scoring")
    except FarensedError as e:  # a bad job file or data file: one line, no traceback
        print(e, file=sys.stderr)
        return EXIT_BAD_JOB


if __name__ == "__main__":
    sys.exit(main())
