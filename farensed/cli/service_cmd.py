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


def _install_one(plan: service.ServicePlan, h, dry_run: bool) -> None:
    click.echo(f"# {plan.file}")
    if dry_run:
        click.echo(plan.text)
    else:
        h.logs.mkdir(parents=True, exist_ok=True)
        atomic_write_text(plan.file, plan.text)
    if plan.kind == "launchd" and not dry_run and plan.file.exists():
        _run_all(plan.uninstall, dry_run, check=False)  # bootstrap refuses an already loaded agent
    _run_all(plan.install, dry_run)


@click.command()
@home_option
@dry_run_option
@click.option("--dashboard", is_flag=True, help="Also run `farensectl dashboard` as a service beside the daemon.")
@click.option("--dashboard-port", type=click.IntRange(1, 65535), default=service.DASHBOARD_PORT, show_default=True,
              help="The dashboard's port on 127.0.0.1.")
@clean_errors
def install(home, dry_run, dashboard, dashboard_port):
    """Install and start the daemon as a service (launchd on macOS, systemd on Linux)."""
    h = get_home(home)
    _install_one(service.plan(h), h, dry_run)
    if dashboard:
        from farensed.dashboard.access import ensure_token, token_path

        if not dry_run:
            ensure_token(h)  # made now, so the first page can act (farensectl dashboard --url)
        _install_one(service.plan(h, service=service.DASHBOARD, port=dashboard_port), h, dry_run)
        click.echo(f"dashboard: http://127.0.0.1:{dashboard_port}/ (actions need the token in {token_path(h)};"
                   f" `farensectl dashboard --url --port {dashboard_port}` prints the address that carries it)")
    click.echo("installed" if not dry_run else "(dry run: nothing changed)")


@click.command()
@home_option
@dry_run_option
@clean_errors
def uninstall(home, dry_run):
    """Stop the service (and the dashboard's, when installed) and remove their files."""
    h = get_home(home)
    dash = service.plan(h, service=service.DASHBOARD)
    for plan in [service.plan(h)] + ([dash] if dash.file.exists() else []):
        _run_all(plan.uninstall, dry_run, check=False)
        if not dry_run:
            plan.file.unlink(missing_ok=True)
        click.echo(f"removed {plan.file}" if not dry_run else f"(dry run: would remove {plan.file})")


@click.command(name="service")
@home_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@clean_errors
def service_status(home, as_json):
    """Whether the service (and the dashboard's, when installed) is installed, loaded and running."""
    h = get_home(home)
    state = _state(service.plan(h))
    dash = service.plan(h, service=service.DASHBOARD)
    if dash.file.exists():
        state["dashboard"] = _state(dash)
    if as_json:
        click.echo(json.dumps(state))
        return
    for s in [state] + ([state["dashboard"]] if "dashboard" in state else []):
        click.echo(f"{s['kind']}: {'installed' if s['installed'] else 'not installed'} ({s['file']}); "
                   f"{'loaded' if s['loaded'] else 'not loaded'}; "
                   f"{'running, pid ' + str(s['pid']) if s['running'] else 'not running'}")


def _state(plan: service.ServicePlan) -> dict:
    state = {"kind": plan.kind, "file": str(plan.file), "installed": plan.file.exists(),
             "loaded": False, "running": False, "pid": None}
    try:
        proc = service.run_command(plan.status)
        state |= service.parse_status(plan.kind, proc.stdout, proc.returncode)
    except Exception as e:  # no launchctl/systemctl here: say so, still show the file state
        state["error"] = str(e)
    return state
