"""`python -m farensed.worker RUN_DIR [--home DIR]`: train the job in RUN_DIR/job.toml.

Exits with a code from farensed.exitcodes; the daemon classifies the end by it alone.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from .. import logs, oom
from ..errors import DataError, JobFileError
from ..exitcodes import (EXIT_BAD_JOB, EXIT_CRASH, EXIT_DIVERGED, EXIT_NO_SPACE, EXIT_OK, EXIT_OOM_EXHAUSTED,
                         EXIT_OOM_RESTART, EXIT_STOPPED)
from ..paths import Home


def parse(argv):
    ap = argparse.ArgumentParser(prog="python -m farensed.worker", description=__doc__)
    ap.add_argument("run_dir", type=Path, help="the job's output folder, holding job.toml")
    ap.add_argument("--home", help="farensed home (default $FARENSED_HOME or the repository)")
    ap.add_argument("--no-compile", action="store_true", help="do not mx.compile the step (debugging)")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse(argv)
    logs.configure(console=False)
    log = logs.get(run_dir=str(args.run_dir))
    run = None
    try:
        from .checkpoint import NoSpace
        from .finish import finish
        from .model import BadJob
        from .run import Run
        from .memory import OomExhausted
        from .trainer import Diverged, StopRequested

        run = Run(args.run_dir.resolve(), Home.from_option(args.home), log, compile=not args.no_compile)
        log = log.bind(job=run.spec.name)
        run.log = log
        run.install_signals()  # a stop while loading exits EXIT_STOPPED at once: nothing to save yet
        run.load()
        run.resume()
        run.train()
        summary = finish(run)
        log.info("job_done", steps=summary.steps, best_val_loss=summary.best_val_loss, seconds=summary.seconds)
        return EXIT_OK
    except StopRequested as e:
        return _end(run, log, "stopped", str(e), EXIT_STOPPED)
    except (JobFileError, DataError, BadJob) as e:
        return _end(run, log, "failed", str(e), EXIT_BAD_JOB)
    except OomExhausted as e:
        return _end(run, log, "failed", str(e), EXIT_OOM_EXHAUSTED)
    except Diverged as e:
        return _end(run, log, "failed", str(e), EXIT_DIVERGED)
    except NoSpace as e:
        return _end(run, log, "stopped", str(e), EXIT_NO_SPACE)
    except RuntimeError as e:
        if oom.is_oom_message(str(e)):  # outside a step (loading, eval): restart lower
            return _end(run, log, "stopped", str(e).splitlines()[0], EXIT_OOM_RESTART)
        traceback.print_exc()
        return _end(run, log, "failed", f"crash: {e}", EXIT_CRASH)


def _end(run, log, status: str, reason: str, code: int) -> int:
    log.warning("worker_exit", status=status, reason=reason, exit_code=code)
    if run is not None:
        try:
            run.write_state(status, reason)
        except Exception:  # the exit code still tells the daemon what happened
            log.exception("state_write_failed")
    return code


if __name__ == "__main__":
    sys.exit(main())
