"""farensectl dashboard: the live web page for the queue, a job, a sweep and compare."""

from __future__ import annotations

import click

from farensed.core.cli_common import clean_errors, get_home, home_option
from farensed.core.errors import FarensedError

DEFAULT_PORT = 8765


def url_of(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


@click.command()
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True,
              help="TCP port (0: any free port; the address is printed).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but loopback needs the token for every request (warned).")
@click.option("--read-only", is_flag=True, help="Refuse every action, even with the token.")
@click.option("--url", "print_url", is_flag=True,
              help="Print the address that carries the token (it acts in your browser) and exit.")
@home_option
@clean_errors
def dashboard(port, host, read_only, print_url, home):
    """Serve a live page of the queue, each job's curves and answers, sweeps and comparisons.

    Reading is open on loopback; pause, resume, cancel, retry and submit need the home's token
    (made into HOME/dashboard.token, mode 0600) and a request from the page itself."""
    from farensed.dashboard.access import ensure_token, is_loopback, read_token, token_path

    h = get_home(home)
    if not h.root.is_dir():
        raise FarensedError(f"{h.root}: no such farensed home (--home or $FARENSED_HOME)")
    if print_url:
        token = read_token(h) or ensure_token(h)
        click.echo(f"{url_of(host, port)}#token={token}")
        return
    loopback = is_loopback(host)
    token = None if read_only and loopback else ensure_token(h)  # read-only on loopback needs none
    if not loopback:
        click.echo(f"warning: serving on {host}, beyond this machine: every request needs the token"
                   f" ({token_path(h)}); traffic is plain HTTP", err=True)
    _serve(h, host, port, token, read_only)


def _serve(h, host: str, port: int, token: str | None, read_only: bool) -> None:
    from farensed.dashboard.access import Policy, token_path
    from farensed.dashboard.server import bind, serve

    sock = bind(host, port)
    policy = Policy(host=host, port=sock.getsockname()[1], token=token, read_only=read_only)
    mode = "read-only" if not policy.can_act else f"actions need the token in {token_path(h)}"
    click.echo(f"farensed dashboard for {h.root}: {url_of(host, policy.port)} ({mode};"
               f" `farensectl dashboard --url --port {policy.port}` prints the address that carries it)")
    try:
        serve(h, sock, policy)
    except OSError as e:
        raise FarensedError(f"dashboard on {host}:{policy.port}: {e}") from None
