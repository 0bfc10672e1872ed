"""farensectl continue JOB: a new job from JOB's adapters (its own id and folder), checked and queued."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from farensed.core.cli_common import clean_errors, get_home, home_option
from farensed.core.errors import FarensedError


@click.command(name="continue")
@click.argument("job_id")
@click.option("--epochs", type=click.IntRange(min=1), help="Epochs more (default 1).")
@click.option("--steps", type=click.IntRange(min=1), help="Or: steps more.")
@click.option("--adapters", default="final", show_default=True, help='final, best, or step:S (a checkpoint).')
@click.option("--fresh-optimizer", is_flag=True, help="Start a new optimizer (default: carry the parent's over"
              " when its checkpoint holds one and the settings allow).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Change a setting, e.g. --set training.learning_rate=1e-4 (repeatable).")
@click.option("--dry-run", is_flag=True, help="Print the new job file; queue nothing.")
@home_option
@clean_errors
def continue_(job_id, epochs, steps, adapters, fresh_optimizer, sets, dry_run, home):
    """Train JOB's adapters further as a new job that names JOB as its parent."""
    from farensed.core import lineage
    from farensed.core.checks import check_job
    from farensed.core.continuation import continued, parse_set
    from farensed.core.formats import JOB_FILE
    from farensed.core.jobfile import parse_job
    from farensed.core.spool.drops import drop, predicted_id

    if epochs and steps:
        raise FarensedError("give --epochs or --steps, not both")
    h = get_home(home)
    run, state = lineage.parent_run(h, job_id)
    parent_text = (run / JOB_FILE).read_text(encoding="utf-8")
    parent = parse_job(parent_text, str(run / JOB_FILE))
    changes, optimizer = [parse_set(s) for s in sets], "fresh" if fresh_optimizer else "auto"
    draft = continued(parent_text, job_id, adapters, 0, epochs, steps, changes, optimizer)
    src = lineage.resolve(parse_job(draft, f"continue {job_id}"), h)  # not finished, no such adapters: one line
    before = (parent.init.steps_before if parent.init else 0) + (src.step or 0)  # the steps count on
    text = continued(parent_text, job_id, adapters, before, epochs, steps, changes, optimizer)
    if dry_run:
        click.echo(text, nl=False)
        return
    name = f"{job_id}-cont.toml"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_text(text, encoding="utf-8")
        rep = check_job(path, h, job_id=predicted_id(h, name), measure_tokens=False)
    for p in rep.problems:
        click.echo(f"error: {str(p).replace(str(path), f'continue {job_id}')}", err=True)
    if not rep.ok:
        raise FarensedError(f"continue {job_id}: not submitted ({len(rep.problems)} problem(s))")
    new_id = drop(h, name, text.encode("utf-8"))
    opt = "a fresh optimizer" if fresh_optimizer or src.optimizer is None else "the parent's optimizer state"
    click.echo(f"continuing {job_id} ({state}, {adapters} adapters from its step {src.step or '?'}) as {new_id},"
               f" with {opt}; its steps count on from {before}")
    click.echo(new_id)
