"""Dashboard figures (a benchmark, not a test): page + API load time with 100 jobs in the home, and
the dashboard process's CPU while idle and while a page polls it.

    .venv/bin/python -m bench.dashboard.dashboard_bench              # ~1 minute
    .venv/bin/python -m bench.dashboard.dashboard_bench --idle 60    # longer CPU windows

Targets (issue 21): the page loads in under 300 ms; the process idles under 1% CPU.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from bench.dashboard import fake_home

FARENSECTL = str(Path(sys.executable).parent / "farensectl")
QUEUE_ASSETS = ("/", "/static/style.css", "/static/common.js", "/static/queue.js", "/api/queue")
JOB_ASSETS = ("/static/style.css", "/static/vendor/uPlot.min.css", "/static/common.js",
              "/static/vendor/uPlot.iife.min.js", "/static/charts.js", "/static/job.js")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def start(home: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([FARENSECTL, "dashboard", "--home", str(home), "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    line = proc.stdout.readline()
    m = re.search(r"http://127\.0\.0\.1:\d+/", line)
    if not m:
        proc.kill()
        raise SystemExit(f"the dashboard did not start: {line}")
    return proc, m.group(0).rstrip("/")


def page_load(client: httpx.Client, base: str, paths) -> float:
    """Milliseconds to fetch a page's HTML, its scripts and styles and its first API answer, in order."""
    t0 = time.perf_counter()
    for p in paths:
        r = client.get(base + p)
        r.raise_for_status()
    return 1000 * (time.perf_counter() - t0)


def cpu_percent(pid: int, seconds: float, during=None) -> float:
    """The process's CPU over `seconds` (user + system, % of one core); `during()` runs each 2 s."""
    p = psutil.Process(pid)
    t0, c0 = time.monotonic(), sum(p.cpu_times()[:2])
    while time.monotonic() - t0 < seconds:
        if during:
            during()
        time.sleep(2.0)
    return 100 * (sum(p.cpu_times()[:2]) - c0) / (time.monotonic() - t0)


def browser_load(base: str, job_id: str) -> dict[str, float] | None:
    """Milliseconds in Chromium from navigation to the rendered queue (100 rows) and job page (charts drawn)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if not Path(CHROMIUM).exists():
        return None
    out = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        for label, path, ready in (("queue", "/", "#jobs tbody tr >> nth=99"),
                                   ("job", f"/job/{job_id}", "[data-chart=loss] canvas")):
            times, marks = [], []
            for _ in range(6):
                t0 = time.perf_counter()
                page.goto(base + path)
                page.wait_for_selector(ready)
                times.append(1000 * (time.perf_counter() - t0))
                # the page's own mark after its first render, in ms from the start of the navigation
                marks.append(page.evaluate("performance.getEntriesByName('farensed:rendered')[0].startTime"))
            out[label] = statistics.median(times[1:])  # the first pays Chromium's own start-up
            out[label + "_mark"] = statistics.median(marks[1:])
        browser.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=100)
    ap.add_argument("--idle", type=float, default=20.0, help="seconds of each CPU window")
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="farensed-dash-bench-"))
    try:
        ids = fake_home.make(home, args.jobs)
        proc, base = start(home)
        try:
            report(proc, base, ids, args.idle)
        finally:
            proc.terminate()
            proc.wait(10)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def report(proc: subprocess.Popen, base: str, ids: list[str], idle: float) -> None:
    running = ids[0]
    with httpx.Client() as client:
        cold_queue = page_load(client, base, QUEUE_ASSETS)
        cold_job = page_load(client, base, (f"/job/{running}", *JOB_ASSETS, f"/api/job/{running}"))
        warm_queue = statistics.median(page_load(client, base, QUEUE_ASSETS) for _ in range(20))
        warm_job = statistics.median(page_load(client, base, (f"/job/{running}", *JOB_ASSETS, f"/api/job/{running}"))
                                     for _ in range(20))
        api_queue = statistics.median(page_load(client, base, ("/api/queue",)) for _ in range(20))
        size = len(client.get(base + "/api/queue").content)
        etag = client.get(base + "/api/queue").headers.get("etag")
        idle_cpu = cpu_percent(proc.pid, idle)
        polled = cpu_percent(proc.pid, idle, lambda: client.get(base + "/api/queue", headers={"if-none-match": etag}))
        polled_job = cpu_percent(proc.pid, idle, lambda: client.get(base + f"/api/job/{running}"))
    shown = browser_load(base, running)
    rss = psutil.Process(proc.pid).memory_info().rss / 2**20
    rows = [
        ("queue page + assets + /api/queue, first load", cold_queue, 300),
        ("queue page + assets + /api/queue, warm (median of 20)", warm_queue, 300),
        ("job page + assets + /api/job, first load", cold_job, 300),
        ("job page + assets + /api/job, warm (median of 20)", warm_job, 300),
        ("/api/queue alone, warm (median of 20)", api_queue, None),
    ]
    if shown:
        rows += [(f"Chromium: queue page rendered, {len(ids)} rows (page's own mark)", shown["queue_mark"], 300),
                 ("Chromium: job page rendered with its charts (page's own mark)", shown["job_mark"], 300),
                 ("  the same seen from Playwright (goto + wait, with its IPC)", shown["queue"], None),
                 ("  the job page seen from Playwright", shown["job"], None)]
    print(f"dashboard with {len(ids)} jobs; machine: {psutil.cpu_count()} CPUs, python {sys.version.split()[0]}")
    for label, ms, target in rows:
        verdict = "" if target is None else ("  ok" if ms < target else "  OVER")
        print(f"  {label:<62} {ms:8.1f} ms" + (f"   target < {target} ms{verdict}" if target else ""))
    print(f"  {'/api/queue answer size':<62} {size / 1024:8.1f} KiB")
    for label, pct in ((f"CPU idle, no client ({idle:.0f} s)", idle_cpu),
                       (f"CPU with a queue page polling every 2 s ({idle:.0f} s)", polled),
                       (f"CPU with a job page polling every 2 s ({idle:.0f} s)", polled_job)):
        print(f"  {label:<62} {pct:8.2f} %    target < 1 %{'  ok' if pct < 1 else '  OVER'}")
    print(f"  {'resident memory':<62} {rss:8.1f} MiB")


if __name__ == "__main__":
    main()
