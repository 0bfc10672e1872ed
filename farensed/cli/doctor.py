"""farensectl doctor: one line per check (ok / warn / fail, with the fix); exit 1 on any fail."""

from __future__ import annotations

import click

from farensed.core.cli_common import clean_errors, get_home, home_option

MARK = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}


@click.command()
@home_option
@click.option("--json", "json_out", is_flag=True, help="Machine-readable output.")
@click.option("--job", "job_file", type=click.Path(dir_okay=False, exists=True),
              help="Also check every host of this job's [distributed] section against this machine.")
@clean_errors
def doctor(home, json_out, job_file):
    """Check this machine for unattended fine-tuning."""
    from pathlib import Path

    from farensed.host import doctor as d

    h = get_home(home)
    checks = d.run_checks(h) + (d.check_hosts(h, Path(job_file)) if job_file else [])
    if json_out:
        click.echo(d.as_json(checks))
    else:
        for c in checks:
            click.echo(f"{MARK[c.level]}  {c.name:8} {c.detail}" + (f"\n            fix: {c.fix}" if c.fix else ""))
    if any(c.level == "fail" for c in checks):
        raise SystemExit(1)
