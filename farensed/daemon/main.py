"""farensed: the daemon. `farensed run` is what launchd/systemd start (foreground)."""

from __future__ import annotations

import click

from farensed import __version__
from farensed.core import logs
from farensed.core.cli_common import clean_errors, get_home, home_option
from farensed.daemon.config import Config


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="farensed")
def cli():
    """farensed - the fine-tuning daemon: watches the spool, runs one job at a time."""


@cli.command()
@home_option
@click.option("--once", is_flag=True, help="Process what is queued, then exit.")
@click.option("--stall-seconds", type=float, default=Config.stall_seconds, show_default=True,
              help="Restart a worker whose progress did not change for this long (0 = off).")
@click.option("--settle-seconds", type=float, default=Config.settle_seconds, show_default=True,
              help="A dropped file that does not parse is rejected only after it is unchanged this long.")
@click.option("--stop-grace", type=float, default=Config.stop_grace, show_default=True,
              help="Seconds a stopping worker gets to checkpoint before its group is killed.")
@click.option("--allow-remote-code", is_flag=True, help="Accept jobs with trust_remote_code = true.")
@click.option("--sleep-guard", type=click.Choice(["auto", "on", "off"]), default=Config.sleep_guard, show_default=True,
              help="Keep the machine from idle sleep while a worker runs (caffeinate -i -w; auto = on macOS).")
@click.option("--hook", envvar="FARENSED_HOOK", default=None,
              help="Shell command run when a job ends, with FARENSED_JOB_ID, FARENSED_JOB_STATE,"
                   " FARENSED_OUTPUT_DIR, FARENSED_SUMMARY and FARENSED_REASON in its environment.")
@click.option("--pause-on-battery", is_flag=True, help="Pause the running job at a checkpoint on battery power;"
              " resume it on AC power.")
@click.option("--worker-python", default=Config.worker_python, show_default="this interpreter",
              help="Python that runs the worker (-m farensed.worker), e.g. another venv's with mlx[cuda].")
@click.option("--metal-relax/--no-metal-relax", default=Config.metal_relax, show_default=True,
              help="macOS: start the worker with AGX_RELAX_CDM_CTXSTORE_TIMEOUT=1 so Metal's watchdog does not"
                   " abort long steps (kIOGPUCommandBufferCallbackErrorImpactingInteractivity). A value already"
                   " in the environment wins.")
@clean_errors
def run(home, once, stall_seconds, settle_seconds, stop_grace, allow_remote_code, sleep_guard, hook,
        pause_on_battery, worker_python, metal_relax):
    """Run the daemon in the foreground (SIGTERM: checkpoint the job and stop)."""
    from farensed.daemon.loop import Daemon

    h = get_home(home)
    problem = logs.configure(json_file=h.logs / "farensed.jsonl")
    if problem:
        logs.get().warning("log_file_unavailable", error=problem)
    cfg = Config(once=once, stall_seconds=stall_seconds, settle_seconds=settle_seconds, stop_grace=stop_grace,
                 allow_remote_code=allow_remote_code, sleep_guard=sleep_guard, hook=hook,
                 pause_on_battery=pause_on_battery, worker_python=worker_python, metal_relax=metal_relax)
    raise SystemExit(Daemon(h, cfg, logs.get()).serve())


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
