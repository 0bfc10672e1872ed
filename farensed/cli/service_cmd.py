"""farensectl install | uninstall | service: the daemon as a launchd agent or systemd user unit."""

from __future__ import annotations

import json

import click

from farensed.core.atomic import atomic_write_text
from farensed.core.cli_common import clean_errors, get_home, home_option
from farensed.host import service

dry_run_option = click.option("--dry-run", is_flag=True, help="Print the file and the commands; change nothing.")


def _run_all(cmds: list[list[str]], dry_run: bool, check: bool = True) -> None:
    for cmd in cmds:
        click.echo("$ " + " ".join(cmd))
        if dry_run:
            continue
        proc = service.run_command(cmd)
        if proc.returncode and check:
            raise click.ClickException(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")


@click.command()
@home_option
@dry_run_option
@clean_errors
def install(home, dry_run):
    """Install and start the daemon as a service (launchd on macOS, systemd on Linux)."""
    plan = service.plan(get_home(home))
    click.echo(f"# {plan.file}")
    if dry_run:
        click.echo(plan.text)
    else:
        get_home(home).logs.mkdir(parents=True, exist_ok=True)
        atomic_write_text(plan.file, plan.text)
    if plan.kind == "launchd" and not dry_run and plan.file.exists():
        _run_all(plan.uninstall, dry_run, check=False)  # bootstrap refuses an already loaded agent
    _run_all(plan.install, dry_run)
    click.echo("installed" if not dry_run else "(dry run: nothing changed)")


@click.command()
@home_option
@dry_run_option
@clean_errors
def uninstall(home, dry_run):
    """Stop the service and remove its file."""
    plan = service.plan(get_home(home))
    _run_all(plan.uninstall, dry_run, check=False)
    if not dry_run:
        plan.file.unlink(missing_ok=True)
    click.echo(f"removed {plan.file}" if not dry_run else f"(dry run: would remove {plan.file})")


@click.command(name="service")
@home_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@clean_errors
def service_status(home, as_json):
    """Whether the service is installed, loaded and running."""
    plan = service.plan(get_home(home))
    state = {"kind": plan.kind, "file": str(plan.file), "installed": plan.file.exists(),
             "loaded": False, "running": False, "pid": None}
    try:
        proc = service.run_command(plan.status)
        state |= service.parse_status(plan.kind, proc.stdout, proc.returncode)
    except Exception as e:  # no launchctl/systemctl here: say so, still show the file state
        state["error"] = str(e)
    if as_json:
        click.echo(json.dumps(state))
        return
    click.echo(f"{plan.kind}: {'installed' if state['installed'] else 'not installed'} ({plan.file}); "
               f"{'loaded' if state['loaded'] else 'not loaded'}; "
               f"{'running, pid ' + str(state['pid']) if state['running'] else 'not running'}")
