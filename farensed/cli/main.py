"""farensectl: the client. Reads status.json and run folders, writes job files and requests."""

from __future__ import annotations

import click

from .. import __version__
from .validate import validate


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="farensectl")
def cli():
    """farensectl - submit, watch and inspect farensed fine-tuning jobs."""


cli.add_command(validate)


def main() -> None:
    cli()
