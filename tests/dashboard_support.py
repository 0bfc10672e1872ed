"""Helpers for the dashboard tests: a real `farensectl dashboard` process on a free port, job records
written through the real models, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import time
from pathlib import Path

from conftest import FARENSECTL, REPO
from farensed.core.atomic import atomic_write_json
from farensed.core.spool import records
from farensed.core.spool.folders import SpoolDirs

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class Dashboard:
    """A running dashboard: its base URL, the home's token and the process."""

    def __init__(self, home: Path, *args: str):
        self.proc = subprocess.Popen([FARENSECTL, "dashboard", "--home", str(home), "--port", "0", *args], cwd=REPO,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.line = self.proc.stdout.readline()
        m = re.search(r"(http://[^ ]+?):(\d+)/", self.line)
        if not m:
            self.stop()
            raise AssertionError(f"the dashboard did not start: {self.line!r} {self.proc.stderr.read()}")
        self.port = int(m.group(2))
        self.base = f"http://127.0.0.1:{self.port}"
        token_file = home / "dashboard.token"
        self.token = token_file.read_text().strip() if token_file.exists() else None

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.stderr.read() if self.proc.stderr else ""


def write_record(home: Path, job_id: str, state: str = "done", name: str | None = None, output: Path | None = None,
                 **extra) -> records.JobRecord:
    """A job record as the daemon writes it (the real model, the atomic writer); `extra` adds fields another
    version of the record may carry (a sweep id), beside the known ones."""
    dirs = SpoolDirs(home / "spool")
    dirs.ensure()
    now = time.time()
    rec = records.JobRecord(id=job_id, file_name=f"{job_id}.toml", name=name or job_id, state=state, since=now,
                            seq=len(list(dirs.jobs.glob("*.json"))), submitted_at=now - 60,
                            started_at=now - 50 if output else None, finished_at=now if state == "done" else None,
                            output_dir=str(output) if output else None)
    atomic_write_json(records.record_path(dirs.jobs, job_id), rec.model_dump(mode="json") | extra)
    return rec


@contextlib.contextmanager
def chromium():
    """Debian's Chromium (never a downloaded browser), headless, with no background networking.
    Playwright's driver and the browser start without the suite's LD_PRELOAD (OpenBLAS for the worker):
    with it, node cannot start threads and Chromium's GPU process dies."""
    from playwright.sync_api import sync_playwright

    saved = os.environ.pop("LD_PRELOAD", None)
    try:
        pw = sync_playwright().start()
    finally:
        if saved is not None:
            os.environ["LD_PRELOAD"] = saved
    try:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, env=clean_env())
        yield browser
        browser.close()
    finally:
        pw.stop()


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
