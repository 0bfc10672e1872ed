"""Running `python -m farensed.worker.score` from the client: the plan, then scored answers as they come."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from farensed.core.errors import FarensedError
from farensed.core.exitcodes import EXIT_OOM_EXHAUSTED
from farensed.core.formats import ADAPTERS, BEST_ADAPTERS, TARGETS, ScoredQuestion, ScoringPlan
from farensed.host.blas import worker_env
from farensed.memory.ladder import is_oom_message


def available_targets(run_dir: Path, wanted: list[str]) -> list[str]:
    """The models asked for (default all three) whose adapters exist; an error names a missing one."""
    files = {"base": None, "best": run_dir / BEST_ADAPTERS / ADAPTERS, "final": run_dir / ADAPTERS}
    missing = [t for t in wanted if files[t] is not None and not files[t].is_file()]
    if missing:
        raise FarensedError(f"{run_dir}: the {' and '.join(missing)} adapters are not written yet")
    if wanted:
        return wanted
    return [t for t in TARGETS if files[t] is None or files[t].is_file()]


def score_cmd(run_dir: Path, home: Path, targets: list[str], data: Path | None, count: int | None) -> list[str]:
    cmd = [sys.executable, "-m", "farensed.worker.score", str(run_dir), "--home", str(home)]
    for t in targets:
        cmd += ["--target", t]
    if data is not None:
        cmd += ["--data", str(data)]
    if count:
        cmd += ["-n", str(count)]
    return cmd


def run_scoring(cmd: list[str]) -> Iterator[ScoringPlan | ScoredQuestion]:
    """The worker's plan, then each scored question as soon as it is written."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=worker_env(), text=True)
        try:
            for line in proc.stdout:
                if line.startswith("{"):
                    yield (ScoredQuestion if '"kind"' in line else ScoringPlan).model_validate_json(line)
        finally:
            proc.stdout.close()
            code = proc.wait()
        err.seek(0)
        _check(code, err.read().decode("utf-8", errors="replace"))


def _check(code: int, err: str) -> None:
    if code == 0:
        return
    if code == EXIT_OOM_EXHAUSTED or is_oom_message(err) or code == -9:
        raise FarensedError("not enough memory to score: another job may be training; wait for it or pause it")
    last = (err.strip().splitlines() or [f"exit code {code}"])[-1]
    raise FarensedError(f"scoring failed: {last}")
