"""How a worker is started: one process, or the ranks of a data-parallel job through mlx.launch.

mlx.launch is a separate executable beside this Python (the daemon never imports mlx). It
starts rank 0 here and the others here or over ssh, and relays their output into worker.log.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from farensed.core.formats import JOB_FILE
from farensed.core.jobfile import load_job
from farensed.core.jobspec import Distributed
from farensed.core.paths import Home
from farensed.host import blas
from farensed.host.cluster import (
    HostGone,
    hostfile_path,
    needs_ssh,
    rank_hosts,
    read_hostfile,
    remote_names,
    unreachable,
    write_checked_hostfile,
)

CHECKED_HOSTFILE = "hostfile.json"  # in the run folder: the checked copy mlx.launch reads

# Passed to every rank with --env: ssh does not carry the daemon's environment to other hosts.
FORWARD_ENV = ("LD_PRELOAD", "PYTHONPATH", "FARENSED_HOME", "FARENSED_FAULTS", "FARENSED_NO_BLAS_PRELOAD",
               "OPENBLAS_NUM_THREADS")
# mlx.launch ignores SIGTERM: the daemon's stop goes to its whole process group, and the ranks
# must checkpoint while the launcher waits for them instead of dying first.
IGNORE_TERM = 'trap "" TERM; exec "$0" "$@"'


@dataclass(frozen=True)
class Plan:
    """The command and environment that start a job's worker (or its ranks)."""

    command: list[str]
    env: dict[str, str]
    ranks: int = 1

    @property
    def launched(self) -> bool:
        return self.ranks > 1


def launcher(python: str) -> str:
    return str(Path(python).parent / "mlx.launch")


def worker_command(python: str, run_dir: Path, home_root: Path, dist: Distributed | None = None,
                   hostfile: Path | None = None, env: dict[str, str] | None = None) -> list[str]:
    """`python -m farensed.worker RUN_DIR`, or mlx.launch starting it once per rank (pure)."""
    worker = [python, "-m", "farensed.worker", str(run_dir), "--home", str(home_root)]
    if dist is None:
        return worker
    cmd = ["/bin/sh", "-c", IGNORE_TERM, launcher(python)]
    cmd += ["--hostfile", str(hostfile)] if hostfile else ["--hosts", ",".join(dist.hosts or ["127.0.0.1"])]
    if dist.processes > 1:
        cmd += ["-n", str(dist.processes)]
    if dist.backend != "any":  # any: mlx.launch's own choice (NCCL with CUDA, else ring, or the hostfile's)
        cmd += ["--backend", dist.backend]
    cmd += ["--starting-port", str(dist.port), "--nccl-port", str(dist.port), "--cwd", str(home_root)]
    for key in FORWARD_ENV:
        if (env or {}).get(key):
            cmd += ["--env", f"{key}={env[key]}"]
    return [*cmd, "--", *worker, "--distributed", dist.backend]


def threads_per_rank(local_ranks: int, cores: int) -> int:
    """BLAS threads for each of `local_ranks` processes sharing `cores` (no oversubscription)."""
    return max(1, cores // max(local_ranks, 1))


def plan(run_dir: Path, home: Home, python: str, base_env: dict[str, str] | None = None) -> Plan:
    """Read the job; for a data-parallel one, check that every ssh host answers (HostGone if not)."""
    env = blas.worker_env(base_env)
    dist = load_job(run_dir / JOB_FILE).distributed
    if dist is None:
        return Plan(worker_command(python, run_dir, home.root), env)
    hostfile = None
    if dist.hostfile:  # checked once, and what was checked is what mlx.launch reads
        checked = read_hostfile(hostfile_path(dist, home))
        hosts, hostfile = list(checked.hosts), write_checked_hostfile(checked, run_dir / CHECKED_HOSTFILE)
    else:
        hosts = rank_hosts(dist, home)
    gone = unreachable(remote_names(hosts))
    if gone:
        raise HostGone("; ".join(f"host {name} does not answer: {why}" for name, why in gone.items()))
    here = sum(not needs_ssh(h) for h in hosts)
    if here > 1 and "OPENBLAS_NUM_THREADS" not in env:
        env["OPENBLAS_NUM_THREADS"] = str(threads_per_rank(here, os.cpu_count() or 1))
    return Plan(worker_command(python, run_dir, home.root, dist, hostfile, env), env, len(hosts))
