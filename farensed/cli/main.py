"""farensectl: the client. Reads status.json and run folders, writes job files and requests.

Verbs are imported only when called (one file per verb), so `farensectl status` does not pay
for the imports of `report` or `install`.
"""

from __future__ import annotations

import importlib

import click

from farensed import __version__

# verb -> (module under farensed.cli, click command object name), in the order --help lists them
VERBS = {
    "status": ("status_cmd", "status"),
    "list": ("list_cmd", "list_jobs"),
    "submit": ("submit", "submit"),
    "validate": ("validate", "validate"),
    "plan": ("plan", "plan"),
    "watch": ("watch", "watch"),
    "logs": ("logs_cmd", "logs"),
    "cancel": ("cancel", "cancel"),
    "pause": ("pause", "pause"),
    "resume": ("resume", "resume"),
    "retry": ("retry", "retry"),
    "continue": ("continue_cmd", "continue_"),
    "report": ("report", "report"),
    "ask": ("ask", "ask"),
    "score": ("score", "score"),
    "compare": ("compare", "compare"),
    "serve": ("serve", "serve"),
    "export": ("export", "export"),
    "dashboard": ("dashboard", "dashboard"),
    "doctor": ("doctor", "doctor"),
    "install": ("service_cmd", "install"),
    "uninstall": ("service_cmd", "uninstall"),
    "service": ("service_cmd", "service_status"),
}


class LazyGroup(click.Group):
    """A click group that imports a verb's module when that verb is used (or listed in --help)."""

    def list_commands(self, ctx):
        return list(VERBS)

    def get_command(self, ctx, name):
        if name not in VERBS:
            return None
        module, attr = VERBS[name]
        return getattr(importlib.import_module(f"{__package__}.{module}"), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="farensectl")
def cli():
    """farensectl - submit, watch and inspect farensed fine-tuning jobs."""


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
