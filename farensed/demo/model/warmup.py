"""`python -m farensed.demo.model.warmup [--home DIR]`: pay MLX's first-use kernel compile for the demo
at setup, not in the demo's first training step.

With mlx-cpu (Linux), the first use of an mx.compile'd function on a machine runs the system's
C++ compiler on its fused kernels (~20-35 s for the demo's training step on 2 cores) and keeps
the libraries in $TMPDIR/mlx/<version>/cpu for every later process. A 2-step run of the demo
job, scoring one question, builds exactly the kernels the demo uses. With Metal or CUDA the
compile is quick: nothing to do. A stamp in that cache folder makes a second run a no-op (and
a cleared /tmp, after a reboot, warms again).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

from farensed.core.paths import REPO_ROOT, Home
from farensed.host.blas import worker_env

DEMO_JOB = REPO_ROOT / "jobs" / "demo.toml"
WARM_STEPS = 2


def kernel_cache() -> Path:
    """Where mlx-cpu keeps compiled kernels (C++'s temp_directory_path, i.e. $TMPDIR or /tmp)."""
    import mlx.core as mx

    return Path(tempfile.gettempdir()) / "mlx" / mx.__version__ / "cpu"


def needed() -> bool:
    """Whether compiling runs a C++ compiler here: MLX on the CPU (no Metal, no CUDA)."""
    import mlx.core as mx

    gpu = mx.metal.is_available() or bool(getattr(mx, "cuda", None) and mx.cuda.is_available())
    return not gpu


def _toml(value) -> str:
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, bool) else str(value).lower()


def warm_job(text: str) -> str:
    """The demo job cut to WARM_STEPS steps scoring one question, as TOML."""
    job = tomllib.loads(text)
    job["training"] = {**job.get("training", {}), "max_steps": WARM_STEPS}
    job["evaluate"] = {**job.get("evaluate", {}), "examples": 1}
    job["generate"] = {**job.get("generate", {}), "prompts": job.get("generate", {}).get("prompts", [])[:1]}
    job["cadence"] = {**job.get("cadence", {}), "checkpoint_every": WARM_STEPS, "eval_every": WARM_STEPS}
    top = [f"{k} = {_toml(v)}" for k, v in job.items() if not isinstance(v, dict)]
    tables = [f"[{k}]\n" + "\n".join(f"{kk} = {_toml(vv)}" for kk, vv in v.items())
              for k, v in job.items() if isinstance(v, dict)]
    return "\n".join(top) + "\n\n" + "\n\n".join(tables) + "\n"


def stamp_name(home: Home, text: str) -> str:
    """Names the demo job and model the kernels were built for: another demo builds again."""
    config = home.root / "models" / "farense-tiny" / "config.json"
    key = text + (config.read_text() if config.is_file() else "")
    return f".farensed-demo-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def warm(home: Home) -> float:
    """Run the cut demo job in a throw-away run folder; returns its seconds."""
    run = Path(tempfile.mkdtemp(prefix="farensed-warmup-"))
    try:
        (run / "job.toml").write_text(warm_job(DEMO_JOB.read_text()), encoding="utf-8")
        t0 = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "farensed.worker", str(run), "--home", str(home.root)],
                              env=worker_env(), capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (run / "training_state.json").read_text() if (run / "training_state.json").exists() else ""
            raise RuntimeError(f"warm-up run failed (exit {proc.returncode}): {proc.stderr[-500:]}{tail[-300:]}")
        return time.monotonic() - t0
    finally:
        shutil.rmtree(run, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m farensed.demo.model.warmup", description=__doc__.splitlines()[0])
    ap.add_argument("--home", help="farensed home (default: $FARENSED_HOME or the repository)")
    ap.add_argument("--force", action="store_true", help="run even when the stamp says it was done")
    args = ap.parse_args(argv)
    home = Home.from_option(args.home)
    if not needed():
        print("kernel warm-up: not needed (MLX compiles quickly on this GPU)")
        return 0
    stamp = kernel_cache() / stamp_name(home, DEMO_JOB.read_text())
    if stamp.exists() and not args.force:
        print(f"kernel warm-up: done before (kernels cached in {kernel_cache()})")
        return 0
    seconds = warm(home)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.touch()
    print(f"kernel warm-up: compiled the demo's kernels in {seconds:.1f}s (cached in {kernel_cache()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
