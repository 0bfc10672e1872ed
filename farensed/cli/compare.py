"""farensectl compare JOB_A JOB_B [...]: runs side by side (compare_models.py): losses, time, settings, answers."""

from __future__ import annotations

import click

from farensed.core.cli_common import clean_errors, get_home, home_option
from farensed.core.errors import FarensedError
from farensed.results import compare as cmp
from farensed.results.adapters import adapter_folder, choose
from farensed.results.infer_client import answers, infer_cmd
from farensed.results.locate import locate
from farensed.results.rundata import RunData, load_run


@click.command()
@click.argument("jobs", nargs=-1, required=True)
@click.option("--prompt", "prompts", multiple=True,
              help="Ask every model this (repeatable); default the jobs' prompts.")
@click.option("--no-answers", is_flag=True, help="Only figures and settings (no model is loaded).")
@click.option("--max-tokens", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--temp", type=click.FloatRange(min=0), default=0.0, show_default=True)
@home_option
@clean_errors
def compare(jobs, prompts, no_answers, max_tokens, temp, home):
    """Compare two or more jobs side by side. Answer scores are compared on the questions every job
    answered (said when their sets differ)."""
    from rich.console import Console

    h = get_home(home)
    jobs = _expand_sweeps(h, list(jobs))
    if len(jobs) < 2:
        raise FarensedError("compare needs at least two jobs (or one sweep with two trials)")
    runs = [load_run(locate(h, j).run_dir) for j in jobs]
    asked = list(prompts) or ([] if no_answers else cmp.common_prompts(runs))
    sections = [("figures", cmp.figure_rows(runs)), cmp.score_rows(runs), ("answer probe", cmp.probe_rows(runs)),
                ("settings that differ", cmp.settings_that_differ(runs))]
    if asked and not no_answers:
        per_run = [_answers(r, h, asked, bool(prompts), max_tokens, temp) for r in runs]
        sections.append(("answers", [(p, [a[i] or "(empty)" for a in per_run]) for i, p in enumerate(asked)]))
    if note := cmp.question_note(runs):
        click.echo(note)
    Console().print(cmp.render_table(cmp.column_names(runs, list(jobs)), sections))


def _answers(run: RunData, home, prompts: list[str], fresh: bool, max_tokens: int, temp: float) -> list[str]:
    """The summary's answers when they cover the prompts (and none were given), else the best adapters'."""
    stored = None if fresh else cmp.stored_answers(run, prompts)
    if stored is not None:
        return stored
    target = choose(run, home)
    with adapter_folder(target, run.run_dir) as folder:
        return answers(infer_cmd(target, folder, prompts, max_tokens, temp, as_json=True), target)


def _expand_sweeps(h, jobs: list[str]) -> list[str]:
    """A sweep's id stands for its trials (ranked, best first), after its ranking is printed."""
    from farensed.results.locate import find_record
    from farensed.results.sweep_text import load, sweep_text

    out = []
    for j in jobs:
        rec = find_record(h, j)
        if rec is None or rec.kind != "sweep":
            out.append(j)
            continue
        table = load(h, j)
        click.echo(sweep_text(table, rec.state) + "\n")
        out += [t.job_id for t in table.ranked() if t.state in ("done", "pruned")]
    return out
