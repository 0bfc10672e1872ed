"""farensectl score JOB [--base|--best|--final] [--data FILE] [-n N]: answer held-out questions and score them."""

from __future__ import annotations

import click

from farensed.core.cli_common import clean_errors, get_home, home_option
from farensed.core.formats import ScoredQuestion, ScoringPlan
from farensed.results.adapters import best_about
from farensed.results.answer_scores import answer_cell, means_lines
from farensed.results.locate import locate
from farensed.results.rundata import load_run
from farensed.results.score_client import available_targets, run_scoring, score_cmd
from farensed.scoring.questions import summarize


@click.command()
@click.argument("job")
@click.option("--base", is_flag=True, help="Score the base model (without adapters).")
@click.option("--best", is_flag=True, help="Score the best adapters (by the job's [evaluate] select).")
@click.option("--final", is_flag=True, help="Score the final adapters. Default: every model whose adapters exist.")
@click.option("--data", type=click.Path(exists=True, dir_okay=False),
              help="A .jsonl of questions with answers (chat or completions). Default: the job's held-out"
                   " examples ([evaluate] data, else test.jsonl, else the validation split).")
@click.option("-n", "count", type=click.IntRange(min=1),
              help="The first N questions of the fixed order (default the job's [evaluate] examples).")
@click.option("--json", "as_json", is_flag=True, help="One answers.jsonl line per question, nothing else.")
@home_option
@clean_errors
def score(job, base, best, final, data, count, as_json, home):
    """Answer held-out questions with a job's models; exact match and F1 against the references."""
    h = get_home(home)
    run_dir = locate(h, job).run_dir
    targets = available_targets(run_dir, [t for t, on in (("base", base), ("best", best), ("final", final)) if on])
    rows: list[ScoredQuestion] = []
    plan = None
    for item in run_scoring(score_cmd(run_dir, h.root, targets, data, count)):
        if isinstance(item, ScoringPlan):
            plan = item
            if not as_json:
                click.echo(f"scoring {item.examples} of {item.available} questions from {item.data} with"
                           f" {', '.join(targets)}: about {item.estimated_seconds:.0f}s", err=True)
                if "best" in targets:
                    click.echo(f"best: the {best_about(load_run(run_dir))}", err=True)
            continue
        rows.append(item)
        click.echo(item.model_dump_json() if as_json else _line(item, targets, len(rows), plan))
    if not as_json and plan is not None:
        click.echo("\n".join(means_lines(summarize(rows, plan.data, plan.available))))


def _line(row: ScoredQuestion, targets: list[str], n: int, plan: ScoringPlan | None) -> str:
    of = f"/{plan.examples}" if plan else ""
    answers = "\n".join(f"    {t:>5}: {answer_cell(row, t)}" for t in targets)
    return f"[{n}{of}] {row.question}\n      ref: {row.reference or '-'}\n{answers}"
