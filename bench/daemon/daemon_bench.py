"""Daemon figures (a benchmark, not a test): idle CPU and RSS, drop-to-worker latency,
`farensectl status` wall time beside `python -c pass`, and 1,000 job files dropped at once.

    .venv/bin/python -m bench.daemon.daemon_bench                # everything (~2 minutes)
    .venv/bin/python -m bench.daemon.daemon_bench --status-only  # status with 1,000 queued jobs (~30 s)
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def small_job(name: str = "bench", steps: int = 6) -> str:
    """A demo job cut down to a few steps on the tiny model."""
    return (f'schema_version = 1\nname = "{name}"\nmodel = "models/farense-tiny"\ndata = "data"\n'
            f"[training]\nbatch_size = 4\ngrad_accumulation = 2\nlearning_rate = 2e-3\nmax_steps = {steps}\n"
            f"max_seq_length = 256\nwarmup_steps = 2\n[lora]\nnum_layers = -1\n"
            f"[cadence]\ncheckpoint_every = 2\neval_every = 1000\nlog_every = 1\nkeep_checkpoints = 2\n")


def make_home() -> Path:
    root = Path(tempfile.mkdtemp(prefix="farensed-bench-"))
    for name in ("models", "data"):
        (root / name).symlink_to(REPO / name)
    (root / "spool").mkdir()
    return root


def records(home: Path) -> dict[str, dict]:
    out = {}
    for p in (home / "spool" / "jobs").glob("*.json"):
        try:
            out[p.stem] = json.loads(p.read_text())
        except ValueError:
            pass
    return out


def drop(home: Path, name: str, text: str) -> None:
    tmp = home / "spool" / f".{name}.tmp"
    tmp.write_text(text)
    os.rename(tmp, home / "spool" / name)


def wait(pred, timeout=300.0, every=0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if v := pred():
            return v
        time.sleep(every)
    raise SystemExit("timed out")


def ctl(home, *args):
    return subprocess.run([str(BIN / "farensectl"), *args, "--home", str(home)], capture_output=True, text=True)


def idle_figures(daemon: psutil.Process) -> tuple[float, float]:
    time.sleep(3)
    daemon.cpu_percent(None)
    time.sleep(10)
    return daemon.cpu_percent(None), daemon.memory_info().rss / 2**20


def latency(home: Path, name: str) -> float:
    t0 = time.time()
    drop(home, f"{name}.toml", small_job(name=name, steps=200))
    rec = wait(lambda: (records(home).get(name) or {}).get("worker_pid") and records(home)[name])
    ctl(home, "cancel", name)
    wait(lambda: records(home)[name]["state"] == "cancelled", 60)
    spawned = next(h["at"] for h in rec["history"] if h["to_state"] == "running")  # just before Popen
    return spawned - t0


def median_wall(cmd: list[str], n: int = 9) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def status_wall(home: Path) -> str:
    """`farensectl status` (and --json) beside the floor every Python command pays."""
    floor = median_wall([sys.executable, "-c", "pass"])
    st = median_wall([str(BIN / "farensectl"), "status", "--home", str(home)])
    js = median_wall([str(BIN / "farensectl"), "status", "--json", "--home", str(home)])
    return (f"status {st * 1000:.0f} ms, status --json {js * 1000:.0f} ms,"
            f" python -c pass {floor * 1000:.0f} ms (medians of 9)")


def thousand(home: Path) -> dict:
    """850 valid, 100 malformed, 50 half-written then completed; all at once."""
    valid = small_job(steps=2)
    t0 = time.time()
    for i in range(850):
        drop(home, f"ok{i:04d}.toml", valid)
    for i in range(100):
        drop(home, f"bad{i:03d}.toml", "name = \n[training\n")
    for i in range(50):
        (home / "spool" / f"half{i:02d}.toml").write_text(valid[: len(valid) // 2])
    time.sleep(1.0)
    half_rejected_early = sum(r["file_name"].startswith("half") and r["state"] == "rejected"
                              for r in records(home).values())
    for i in range(50):
        (home / "spool" / f"half{i:02d}.toml").write_text(valid)
    wait(lambda: len(records(home)) >= 1002 and not list((home / "spool").glob("*.toml")), 900, 0.2)
    took = time.time() - t0
    recs = [r for r in records(home).values() if r["file_name"][:2] in ("ok", "ba", "ha")]
    files = sum(1 for s in ("queued", "running", "done", "failed", "cancelled", "rejected", "paused")
                for _ in (home / "spool" / s).glob("*.toml"))
    starts = Counter(json.loads(x).get("job_id") for x in (home / "logs" / "farensed.jsonl").read_text().splitlines()
                     if '"worker_started"' in x)
    return {"seconds": round(took, 1), "states": dict(Counter(r["state"] for r in recs)),
            "records": len(recs), "job_files_in_state_folders": files - 2,
            "half_written_rejected_early": half_rejected_early,
            "bad_rejected": sum(r["file_name"].startswith("bad") and r["state"] == "rejected" for r in recs),
            "run_twice": [j for j, n in starts.items() if n > 1]}


def status_only() -> None:
    """1,000 jobs queued behind a long one, then status timed while the daemon is up."""
    home = make_home()
    d = subprocess.Popen([str(BIN / "farensed"), "run", "--home", str(home)], stderr=subprocess.DEVNULL)
    try:
        drop(home, "long.toml", small_job(name="long", steps=100000))
        for i in range(1000):
            drop(home, f"q{i:04d}.toml", small_job(name=f"q{i}", steps=2))
        wait(lambda: sum(r["state"] == "queued" for r in records(home).values()) >= 1000, 600, 0.5)
        time.sleep(3)
        print(f"farensectl with 1,000 jobs queued: {status_wall(home)}")
    finally:
        d.send_signal(signal.SIGTERM)
        d.wait(60)


def main() -> None:
    if "--status-only" in sys.argv:
        status_only()
        return
    home = make_home()
    d = subprocess.Popen([str(BIN / "farensed"), "run", "--home", str(home)], stderr=subprocess.DEVNULL)
    try:
        wait(lambda: (home / "status.json").exists(), 30)
        proc = psutil.Process(d.pid)
        cpu, rss = idle_figures(proc)
        print(f"idle daemon: {cpu:.2f}% CPU, {rss:.1f} MiB RSS (before any job)")
        cold, warm = latency(home, "lat1"), latency(home, "lat2")
        print(f"drop -> worker started: {cold:.3f} s first (imports the validator), {warm:.3f} s after")
        cpu2, rss2 = idle_figures(proc)
        print(f"idle daemon after jobs: {cpu2:.2f}% CPU, {rss2:.1f} MiB RSS")
        print(f"farensectl with 2 jobs: {status_wall(home)}")
        print("1,000 files dropped at once:", json.dumps(thousand(home)))
        print(f"farensectl with 1,000 jobs: {status_wall(home)}")
        t = time.time()
        d.send_signal(signal.SIGTERM)
        d.wait(60)
        print(f"SIGTERM with a job running -> daemon exited {d.returncode} in {time.time() - t:.1f} s")
    finally:
        if d.poll() is None:
            d.kill()
    print(f"home: {home}")


if __name__ == "__main__":
    main()
