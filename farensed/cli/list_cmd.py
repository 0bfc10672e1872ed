"""farensectl list [--json]: every job the spool knows, in arrival order."""

from __future__ import annotations

import json
import time

import click

from farensed.cli import client
from farensed.core.cli_common import clean_errors, get_home, home_option
from farensed.core.spool import records


@click.command(name="list")
@click.option("--json", "as_json", is_flag=True,
              help="A JSON array of {id, state, priority, submitted_at, output_dir}.")
@home_option
@clean_errors
def list_jobs(as_json, home):
    """List jobs: id, state, priority, submitted, output folder (a job whose record cannot be read is
    listed as unreadable, with why)."""
    found, unreadable = records.scan(client.dirs(get_home(home)).jobs)
    recs = sorted(found.values(), key=lambda r: r.seq)
    # a record that cannot be read is still a job: listed last, with why (the daemon rewrites it)
    torn = [{"id": p.stem, "state": "unreadable", "priority": None, "submitted_at": None, "output_dir": None,
             "reason": why} for p, why in sorted(unreadable.items())]
    if as_json:
        keys = ("id", "state", "priority", "submitted_at", "output_dir", "reason")
        click.echo(json.dumps([{k: getattr(r, k) for k in keys} for r in recs] + torn, indent=2))
        return
    for r in recs:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.submitted_at))
        click.echo(f"{r.id:<24} {r.state:<10} p{r.priority:<3} {when}  {r.output_dir or r.reason or ''}")
    for t in torn:
        click.echo(f"{t['id']:<24} {'unreadable':<10} {'':<4} {'':<16}  {t['reason']}")
