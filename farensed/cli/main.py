"""farensectl: the client. Reads status.json and run folders, writes job files and requests."""

from __future__ import annotations

import click

from .. import __version__
from .validate import validate
from .doctor import doctor
from .service_cmd import install, service_status, uninstall
from .cancel import cancel
from .list_cmd import list_jobs
from .logs_cmd import logs
from .pause import pause
from .resume import resume
from .retry import retry
from .status_cmd import status
from .submit import submit
from .watch import watch
from .report import report
from .ask import ask
from .compare import compare
from .export import export


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="farensectl")
def cli():
    """farensectl - submit, watch and inspect farensed fine-tuning jobs."""


cli.add_command(validate)
cli.add_command(doctor)
cli.add_command(install)
cli.add_command(uninstall)
cli.add_command(service_status)
cli.add_command(status)
cli.add_command(list_jobs)
cli.add_command(submit)
cli.add_command(cancel)
cli.add_command(pause)
cli.add_command(resume)
cli.add_command(retry)
cli.add_command(logs)
cli.add_command(watch)
cli.add_command(report)
cli.add_command(ask)
cli.add_command(compare)
cli.add_command(export)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
