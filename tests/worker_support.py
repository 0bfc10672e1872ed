"""Helpers for worker tests: small real jobs on the demo model, real worker subprocesses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlx.core as mx

from conftest import small_job  # noqa: F401 - the one small job; test_worker_math/_oom import it from here
from farensed.host.blas import worker_env


def make_run(tmp: Path, name: str, job_text: str) -> Path:
    run = tmp / name
    run.mkdir(parents=True)
    (run / "job.toml").write_text(job_text)
    return run


def worker_cmd(run: Path) -> list[str]:
    return [sys.executable, "-m", "farensed.worker", str(run), "--home", str(run.parent)]


def start_worker(run: Path, faults: str = "", **kw) -> subprocess.Popen:
    env = worker_env()
    env["FARENSED_FAULTS"] = faults
    log = open(run / "worker.log", "ab")
    return subprocess.Popen(worker_cmd(run), env=env, stdout=log, stderr=subprocess.STDOUT, **kw)


def run_worker(run: Path, faults: str = "", timeout: float = 300) -> int:
    p = start_worker(run, faults)
    return p.wait(timeout=timeout)


def tensors(path: Path) -> dict[str, mx.array]:
    return dict(mx.load(str(path)))


def same_bits(a: Path, b: Path) -> bool:
    ta, tb = tensors(a), tensors(b)
    return ta.keys() == tb.keys() and all(mx.array_equal(ta[k], tb[k]).item() for k in ta) and all(
        bytes(memoryview(ta[k])) == bytes(memoryview(tb[k])) for k in ta)


def rel_norm_diff(a: Path, b: Path) -> float:
    """||a - b|| / ||b|| over all adapter tensors together."""
    ta, tb = tensors(a), tensors(b)
    diff = sum((mx.sum((ta[k] - tb[k]) ** 2)).item() for k in ta)
    return (diff / sum(mx.sum(tb[k] ** 2).item() for k in tb)) ** 0.5
