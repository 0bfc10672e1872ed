"""farensectl: the client. Reads status.json and run folders, writes job files and requests.

Verbs are imported only when called (one file per verb), so `farensectl status` does not pay
for the imports of `report` or `install`.
"""

from __future__ import annotations

import importlib
import os

import click

from farensed import __version__
from farensed.core.paths import ENV_HOME

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

    def resolve_command(self, ctx, args):
        name = args[0] if args else ""
        if name and not name.startswith("-") and name not in VERBS:
            from farensed.core.suggest import did_you_mean  # difflib only for a verb that is not one

            ctx.fail(f"no such verb {name!r}{did_you_mean(name, VERBS)} (farensectl --help lists them)")
        return super().resolve_command(ctx, args)


def _set_home(ctx, param, value):
    """`farensectl --home X VERB`: the same as VERB's own --home (which, given too, wins)."""
    if value:
        os.environ[ENV_HOME] = value
    return value


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="farensectl")
@click.option("--home", type=click.Path(file_okay=False), default=None, expose_value=False, is_eager=True,
              callback=_set_home, help="farensed home, for every verb (also accepted after the verb).")
def cli():
    """farensectl - submit, watch and inspect farensed fine-tuning jobs."""


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
