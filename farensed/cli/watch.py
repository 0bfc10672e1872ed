"""farensectl watch [JOB]: a live view of a job (the guide's monitor.py), refreshed every few seconds."""

from __future__ import annotations

import time

import click

from farensed.core.cli_common import clean_errors, get_home, home_option
from farensed.results.locate import default_job, locate


@click.command()
@click.argument("job", required=False)
@click.option("--refresh", type=click.FloatRange(min=0.2), default=2.0, show_default=True,
              help="Seconds between frames.")
@click.option("--once", is_flag=True, help="Print one frame and exit (scripts, tests).")
@home_option
@clean_errors
def watch(job, refresh, once, home):
    """Watch a job's progress live until it ends (Ctrl-C to leave)."""
    from rich.console import Console
    from rich.live import Live

    from farensed.results.live import gather, render

    h = get_home(home)
    ref = locate(h, job) if job else default_job(h)
    console = Console()
    frame = gather(h, ref)
    if once:
        console.print(render(frame))
        return
    try:
        with Live(render(frame), console=console, refresh_per_second=4, auto_refresh=False) as live:
            while not frame.ended:
                time.sleep(refresh)
                frame = gather(h, ref)
                live.update(render(frame), refresh=True)
    except KeyboardInterrupt:
        console.print("stopped watching (the job goes on)")
