"""farensectl validate FILE...: every problem with its key and line; what the data looks like."""

from __future__ import annotations

import click

from farensed.core.cli_common import clean_errors, get_home, home_option


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--no-paths", is_flag=True, help="Skip model/data/output checks (a job written for another machine).")
@click.option("--allow-remote-code", is_flag=True, help="Accept trust_remote_code = true.")
@click.option("-q", "--quiet", is_flag=True, help="Only problems, no notes about the data.")
@home_option
@clean_errors
def validate(files, no_paths, allow_remote_code, quiet, home):
    """Check job files; exit non-zero if any has a problem."""
    from farensed.core.checks import check_job  # here, not at import: keeps every other verb fast

    h = get_home(home)
    bad = 0
    for f in files:
        rep = check_job(f, h, check_paths=not no_paths, allow_remote_code=allow_remote_code)
        for p in rep.problems:
            click.echo(f"error: {p}", err=True)
        if not quiet:
            for note in rep.notes:
                click.echo(f"  {note}")
        click.echo(f"{f}: {'ok' if rep.ok else f'{len(rep.problems)} problem(s)'}")
        bad += not rep.ok
    if bad:
        raise SystemExit(1)
