"""Command-line plumbing both entry points (farensectl, farensed) share: the --home option and
turning FarensedError into one clear line."""

from __future__ import annotations

import functools

import click

from farensed.core.errors import FarensedError
from farensed.core.paths import Home

home_option = click.option(
    "--home", envvar="FARENSED_HOME", type=click.Path(file_okay=False), default=None,
    help="farensed home: spool, checkpoints, status (default $FARENSED_HOME or the repository).")


def clean_errors(fn):
    """Our errors and the OS's become `Error: <one line>` and exit 1, never a traceback."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except FarensedError as e:
            raise click.ClickException(str(e)) from None
        except OSError as e:
            raise click.ClickException(os_error_line(e)) from None
    return wrapper


def os_error_line(e: OSError) -> str:
    """`PATH: what went wrong`, e.g. `/x/spool/requests: Permission denied`."""
    where = f"{e.filename}" + (f" -> {e.filename2}" if e.filename2 else "") if e.filename else None
    what = e.strerror or str(e)
    return f"{where}: {what}" if where else what


def get_home(home: str | None) -> Home:
    return Home.from_option(home)
