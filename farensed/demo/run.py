"""The README's first command: start the daemon (unless one runs), submit the demo job, show
its progress until it ends, show the results, stop the daemon it started. No mlx here."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

from farensed.cli import client
from farensed.core.errors import FarensedError
from farensed.core.formats import JOB_FILE, TrainingSummary
from farensed.core.paths import REPO_ROOT, Home
from farensed.core.spool import records
from farensed.core.spool.lock import holder_pid
from farensed.core.states import FINISHED
from farensed.core.status import job_view
from farensed.results.answer_scores import means_lines, side_by_side
from farensed.results.rundata import load_run
from farensed.scoring.best import best_words

UNFINISHED = ("queued", "running", "paused")


def start_daemon(home: Home) -> subprocess.Popen | None:
    """A daemon of our own in the background, or None when one already serves this home."""
    if holder_pid(home.lock_file) is not None:
        click.echo(f"using the running daemon (pid {holder_pid(home.lock_file)})")
        return None
    home.logs.mkdir(parents=True, exist_ok=True)
    out = open(home.logs / "demo-daemon.out", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "farensed.daemon.main", "run", "--home", str(home.root)],
                            stdout=out, stderr=subprocess.STDOUT)
    for _ in range(100):
        if holder_pid(home.lock_file) == proc.pid:
            click.echo(f"started farensed (pid {proc.pid}); log: {home.logs / 'farensed.jsonl'}")
            return proc
        time.sleep(0.1)
    raise click.ClickException(f"the daemon did not start; see {home.logs / 'demo-daemon.out'}")


def submit(home: Home, job_file: Path) -> str:
    proc = subprocess.run([sys.executable, "-m", "farensed.cli.main", "submit", str(job_file), "--home",
                           str(home.root)], capture_output=True, text=True)
    if proc.returncode:
        raise click.ClickException(proc.stderr.strip() or proc.stdout.strip())
    return proc.stdout.strip().splitlines()[-1]


def wait_claimed(home: Home, job_id: str, timeout: float = 30.0) -> None:
    """Until the daemon has claimed the dropped file (its record exists)."""
    record = client.dirs(home).jobs / f"{job_id}.json"
    end = time.monotonic() + timeout
    while not record.exists():
        if time.monotonic() > end:
            raise click.ClickException(f"the daemon did not pick up {job_id} within {timeout:.0f} s;"
                                       f" see {home.logs / 'farensed.jsonl'}")
        time.sleep(0.1)


def unfinished(home: Home, job_file: Path) -> str | None:
    """The id of a job of this job file that an earlier demo left unfinished (Ctrl-C), if any."""
    recs = [r for r in records.load_all(client.dirs(home).jobs).values()
            if r.file_name == job_file.name and r.state in UNFINISHED]
    return max(recs, key=lambda r: r.seq).id if recs else None


def wait_started(home: Home, job_id: str) -> str:
    """Until the job's run folder is ready for `watch` (or the job ended without one); its state."""
    said = False
    while True:
        rec = client.job(home, job_id)
        if rec.state in FINISHED or (rec.output_dir and (Path(rec.output_dir) / JOB_FILE).is_file()):
            return rec.state
        if not said and rec.state in ("queued", "paused"):
            click.echo(f"job {job_id} is {rec.state}" + (f" ({rec.reason})" if rec.reason else "")
                       + ": waiting for it to start")
            said = True
        time.sleep(0.2)


def follow(home: Home, job_id: str) -> str:
    """Show progress with `farensectl watch` until the job ends; returns its final state."""
    wait_claimed(home, job_id)
    if wait_started(home, job_id) in FINISHED:
        return client.job(home, job_id).state
    subprocess.run([sys.executable, "-m", "farensed.cli.main", "watch", job_id, "--home", str(home.root)])
    for _ in range(50):  # watch returns when the job ends; wait for the daemon to record it
        state = job_view(client.job(home, job_id)).state
        if state in FINISHED:
            return state
        time.sleep(0.2)
    return state


def show_results(home: Home, job_id: str) -> None:
    view = job_view(client.job(home, job_id))
    out = Path(view.output_dir or home.checkpoints / job_id)
    click.echo(f"\njob {job_id}: {view.state}" + (f" ({view.reason})" if view.reason else ""))
    if not out.is_dir():
        click.echo(f"no results: {out} was never written (farensectl status {job_id} says more)")
        return
    data = load_run(out)
    if data.summary is not None:
        click.echo(timing_text(data.summary))
        show_answers(data)
    click.echo(f"\nresults in {out}:")
    for p in sorted(out.iterdir()):
        click.echo(f"  {p.name}{'/' if p.is_dir() else ''}")
    click.echo(f"\nnext: farensectl report {job_id}   farensectl score {job_id}   "
               f"farensectl ask {job_id} \"Qual é a alcunha do Farense?\"")


def timing_text(s: TrainingSummary) -> str:
    """Training time and speed without start-up and compile, which are given on their own."""
    by_answers = s.probe is not None and s.probe.select == "answers" and s.best_score is not None
    best = best_words(s.best_step, s.best_score, s.best_val_loss, s.probe.select if s.probe else None) or "-"
    train = f"{s.final_train_loss:.3f}" if s.final_train_loss is not None else "-"
    return (f"  trained {s.steps} steps in {s.seconds:.1f}s, {s.tokens_per_sec:,.0f} tokens/s"
            f" (apart from that: start-up and loading {s.load_seconds:.1f}s, compiling the step"
            f" {s.compile_seconds:.1f}s)\n"
            f"  final train loss {train}, best adapters at {best}"
            f"{' (by answers to the probe questions)' if by_answers else ''}")


def show_answers(data) -> None:
    """The job's prompts answered by the base model and the trained (final) adapters, side by side
    with their F1 against the answer in the data; then the held-out means."""
    from rich.console import Console
    from rich.table import Table

    prompts = [r for r in data.answers if r.kind == "prompt"]
    if prompts:
        table = Table(title="base model vs trained (final adapters); F1 against the data's answer",
                      show_lines=True, header_style="bold")
        for name in ("question", "base model", "trained"):
            table.add_column(name, overflow="fold")
        for question, _ref, base, final in side_by_side(prompts, ("base", "final")):
            table.add_row(question, base, final)
        Console().print(table)
    for line in means_lines(data.summary.scores):
        click.echo(line)


def stop_daemon(proc: subprocess.Popen | None) -> None:
    if proc is None:
        return
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    click.echo(f"stopped farensed (pid {proc.pid})")


@click.command()
@click.option("--home", envvar="FARENSED_HOME", default=None, help="farensed home (default: the repository).")
@click.option("--job", "job_file", type=click.Path(dir_okay=False, exists=True),
              default=str(REPO_ROOT / "jobs" / "demo.toml"), show_default=True)
def main(home, job_file):
    """Run the demo job through the daemon and show what it produced."""
    h = Home.from_option(home)
    os.environ["FARENSED_HOME"] = str(h.root)
    proc = start_daemon(h)
    try:
        state = run_demo(h, Path(job_file))
    except KeyboardInterrupt:
        click.echo("\nstopped: the job goes on from its last checkpoint when you run scripts/demo again")
        state = "interrupted"
    except FarensedError as e:
        click.echo(f"Error: {e}", err=True)
        state = "error"
    finally:
        stop_daemon(proc)
    sys.exit(0 if state == "done" else 130 if state == "interrupted" else 1)


def run_demo(h: Home, job_file: Path) -> str:
    """Submit the demo job (or take up the one an earlier run left unfinished), follow it, show its results."""
    job_id = unfinished(h, job_file)
    if job_id is not None:
        click.echo(f"continuing job {job_id}, left unfinished by an earlier run (from its last checkpoint)")
        if client.job(h, job_id).state == "paused":
            subprocess.run([sys.executable, "-m", "farensed.cli.main", "resume", job_id], check=False)
    else:
        job_id = submit(h, job_file)
        click.echo(f"submitted {job_file} as job {job_id}")
    state = follow(h, job_id)
    show_results(h, job_id)
    return state


if __name__ == "__main__":
    main()
