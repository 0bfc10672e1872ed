"""farensectl doctor: is this machine ready for an unattended run? One check per line, each
ok / warn / fail with the fix. No mlx here: MLX is asked through a worker subprocess."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from farensed.core import status_peek
from farensed.core.errors import FarensedError
from farensed.core.jobfile import load_job
from farensed.core.paths import REPO_ROOT, Home
from farensed.core.spool.folders import SpoolDirs, permission_problem
from farensed.core.spool.lock import daemon_alive
from farensed.core.units import GIB
from farensed.host import blas, facts, metal, service
from farensed.host.cluster import rank_hosts

SETUP = f"rerun {shlex.quote(str(REPO_ROOT / 'scripts' / 'setup'))}"  # absolute: a fix works from any folder
SAMPLE_DATA = shlex.quote(str(REPO_ROOT / "data"))

GUIDE_JOB_GB = 11.0  # the guide's own estimate for Mistral-7B 4-bit, batch 4, 512 tokens


@dataclass(frozen=True)
class Check:
    name: str
    level: str  # ok | warn | fail
    detail: str
    fix: str = ""


def check_python() -> Check:
    v = sys.version_info
    ok = v >= (3, 11)
    return Check("python", "ok" if ok else "fail", f"Python {v.major}.{v.minor}.{v.micro} ({sys.executable})",
                 "" if ok else f"install Python 3.11 or newer and {SETUP}")


def probe_mlx() -> dict | Check:
    proc = subprocess.run([sys.executable, "-m", "farensed.worker.probe"], capture_output=True, text=True,
                          env=blas.worker_env(), timeout=120)
    if proc.returncode:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return Check("mlx", "fail", f"MLX does not start: {tail}", SETUP)
    return json.loads(proc.stdout)


def check_mlx(info: dict) -> list[Check]:
    versions = Check("mlx", "ok", f"mlx {info['mlx']}, mlx-lm {info['mlx_lm']}")
    if info["device"] == "gpu":
        device = Check("device", "ok", f"MLX trains on the GPU ({info.get('device_name') or 'Metal'})")
    elif sys.platform == "darwin":
        device = Check("device", "warn", "MLX would train on the CPU on this Mac (Metal not available)",
                       "use an Apple Silicon Mac with macOS 14+ and the `mlx` package (not mlx[cpu])")
    else:
        device = Check("device", "warn", f"training runs on the CPU ({info.get('device_name')}): fine for the"
                       " demo model, far too slow for a 7B model", "train large models on an Apple Silicon Mac")
    return [versions, device]


def check_memory() -> Check:
    total = psutil.virtual_memory().total / GIB
    if total >= 16:
        return Check("memory", "ok", f"{total:.1f} GB: the guide's job (7B 4-bit, batch 4, 512 tokens,"
                     f" ~{GUIDE_JOB_GB:.0f} GB) fits")
    return Check("memory", "warn", f"{total:.1f} GB: the guide's job needs ~{GUIDE_JOB_GB:.0f} GB",
                 "set training.batch_size = 2 and grad_accumulation = 4 (same effective batch), and"
                 " memory.budget_gb so the worker steps down before the OS kills it")


def check_disk(home: Home) -> Check:
    where = home.root if home.root.exists() else home.root.parent
    free = shutil.disk_usage(where).free / GIB
    level = "ok" if free >= 5 else "warn" if free >= 1 else "fail"
    return Check("disk", level, f"{free:.1f} GB free at {where}",
                 "" if level == "ok" else "free some space: checkpoints and a 4-bit 7B model need several GB")


def check_spool(home: Home) -> Check:
    spool = home.spool
    if not spool.exists():
        return Check("spool", "warn", f"{spool} does not exist yet", "it is created when the daemon starts")
    for folder in (home.root, *SpoolDirs(spool).all):
        problem = permission_problem(folder) if folder.exists() else None
        if problem is not None:
            return Check("spool", "fail", *problem)
    return Check("spool", "ok", f"{home.root}, {spool} and its folders are yours and not writable by others")


def check_service(home: Home) -> Check:
    plan = service.plan(home)
    if not plan.file.exists():
        return Check("service", "warn", f"{plan.kind} service not installed", "farensectl install")
    try:
        proc = service.run_command(plan.status)
        st = service.parse_status(plan.kind, proc.stdout, proc.returncode)
    except Exception as e:
        return Check("service", "warn", f"installed at {plan.file}, state unknown: {e}")
    if st["running"]:
        return Check("service", "ok", f"{plan.kind} service running (pid {st['pid']})")
    return Check("service", "warn", f"{plan.kind} service installed but not running", "farensectl install")


def check_blas() -> Check | None:
    info = blas.inspect()
    if not info.needed:
        return None
    if info.optimized and not os.environ.get(blas.DISABLE_ENV):
        return Check("blas", "ok", info.in_use)
    return Check("blas", "warn", info.in_use + " (~10x slower training)",
                 "sudo apt-get install libopenblas0-pthread (farensed preloads it into the worker)")


def check_metal_relax(home: Home) -> Check | None:
    """macOS: does the worker run with Metal's watchdog relaxed (the fix for the user's old abort)?"""
    if not metal.applies():
        return None
    st = status_peek.read_fresh(home.status_file, daemon_alive(home))
    said = st[1].daemon.get("metal_relax") if st else None
    text = said or metal.describe(dict(os.environ)) + " (daemon not running: what it would do)"
    if text.startswith("off"):
        return Check("metal", "warn", text, "start farensed without --no-metal-relax")
    return Check("metal", "ok", text)


def check_demo(home: Home) -> Check:
    model, data = home.models / "farense-tiny" / "config.json", home.data / "train.jsonl"
    missing = [p for p in (model, data) if not p.exists()]
    if not missing:
        return Check("demo", "ok", "demo model and sample data present")
    fixes = [] if data.exists() else [f"mkdir -p {shlex.quote(str(home.data))} && cp {SAMPLE_DATA}/*.jsonl "
                                       f"{shlex.quote(str(home.data))}/"]
    if not model.exists():  # absolute: the fix works from any folder
        fixes.append(f"{shlex.quote(sys.executable)} -m farensed.demo.model --if-missing --home "
                     f"{shlex.quote(str(home.root))}")
    return Check("demo", "warn", "missing: " + ", ".join(str(p) for p in missing), " && ".join(fixes))


def run_checks(home: Home) -> list[Check]:
    checks = [check_python()]
    info = probe_mlx()
    checks += [info] if isinstance(info, Check) else check_mlx(info)
    checks += [check_memory(), check_disk(home), check_spool(home), check_service(home)]
    checks += [c for c in (check_blas(), check_metal_relax(home), check_demo(home)) if c is not None]
    return checks


def check_launcher() -> Check:
    path = Path(sys.executable).parent / "mlx.launch"
    if path.exists():
        return Check("launch", "ok", f"{path} starts the ranks")
    return Check("launch", "fail", f"{path} not found: mlx.launch comes with mlx", SETUP)


def check_hosts(home: Home, job_file: Path) -> list[Check]:
    """Every host of the job's [distributed] section answers and has what this machine has."""
    try:
        spec = load_job(job_file)
        hosts = rank_hosts(spec.distributed, home) if spec.distributed else None
    except FarensedError as e:
        return [Check("hosts", "fail", str(e).splitlines()[0], f"farensectl validate {job_file}")]
    if hosts is None:
        return [Check("hosts", "warn", f"{job_file} has no [distributed] section: it runs on this machine alone")]
    here = facts.collect(home, spec.model, spec.data)
    checks = [check_launcher()]
    for name in dict.fromkeys(h.ssh for h in hosts):
        ranks = ",".join(str(r) for r, h in enumerate(hosts) if h.ssh == name)
        checks.append(host_check(name, ranks, here, facts.ask(name, sys.executable, home.root, spec.model,
                                                                 spec.data)))
    return checks


def host_check(name: str, ranks: str, here: dict, there: dict | str) -> Check:
    """One host's line: unreachable, different (saying what), or the same as this machine (pure)."""
    label = f"host {name} (rank {ranks})"
    if isinstance(there, str):
        return Check(label, "fail", f"does not answer: {there}",
                     f"check that {name} is on and reachable, and that `ssh {name}` works without a password"
                     " (ssh-copy-id)")
    diffs = facts.compare(here, there, name)
    if diffs:
        return Check(label, "fail", "; ".join(diffs), f"install the same farensed and mlx on {name} (scripts/setup)"
                     " and copy the model and data to the same paths under the same home")
    return Check(label, "ok", f"same farensed, mlx, BLAS, model and data as this machine ({there['platform']})")


def as_json(checks: list[Check]) -> str:
    return json.dumps({"ok": not any(c.level == "fail" for c in checks), "checks": [asdict(c) for c in checks]},
                      indent=2)
