"""A full disk, for real: the spool on a small tmpfs filled to 0 bytes (root), or a spool folder the
daemon's user cannot write (anyone else). Whatever the daemon decides while its record files cannot
be written, the files agree with it as soon as a write succeeds, with no daemon restart."""

from __future__ import annotations

import json
import os
import subprocess
from contextlib import contextmanager
from pathlib import Path

from conftest import ctl, record, small_job, wait_for
from farensed.core.spool.folders import SpoolDirs


@contextmanager
def refusing_spool(spool: Path, drop: dict[str, str]):
    """A spool holding the job files `drop` (name: text) whose record files then cannot be written:
    a 4 MiB tmpfs filled to the last byte for root, a read-only jobs/ folder for a user. Yields
    free(), which makes writing possible again."""
    spool.mkdir()
    root = os.geteuid() == 0
    if root:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs", str(spool)], check=True)
    SpoolDirs(spool).ensure()
    for name, text in drop.items():
        (spool / name).write_text(text)
    filler = spool / ".filler"
    try:
        if root:
            _fill(filler)
        else:
            (spool / "jobs").chmod(0o555)
        yield lambda: filler.unlink() if root else (spool / "jobs").chmod(0o755)
    finally:
        if root:
            subprocess.run(["umount", "-l", str(spool)], check=True)
        else:
            (spool / "jobs").chmod(0o755)


def _fill(path: Path) -> None:
    """Write until the filesystem has not one byte left (ENOSPC at the smallest chunk)."""
    with open(path, "wb", buffering=0) as f:
        for chunk in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    f.write(b"\0" * chunk)
            except OSError:
                continue


def _job_in_status(home: Path, job_id: str) -> dict:
    try:
        views = json.loads((home / "status.json").read_text())
    except (OSError, ValueError):
        return {}
    every = [views.get("current")] + views["queue"] + views["paused"] + views["recent"]
    return next((v for v in every if v and v["id"] == job_id), {})


def test_a_job_paused_while_its_record_cannot_be_written_is_on_disk_as_paused_once_it_can(home, daemon):
    # Given a job dropped into a spool whose record files cannot be written, and a worker that finds
    # no free disk before its step-4 checkpoint
    job = small_job(8, "full", cadence={"checkpoint_every": 4})
    with refusing_spool(home / "spool", {"full.toml": job}) as free:
        daemon(env={"FARENSED_FAULTS": "disk_full@4"})
        # When the daemon runs it and the worker pauses it, Then the daemon knows (its status says paused)
        # though the spool cannot say so yet
        view = wait_for(lambda: _job_in_status(home, "full").get("state") == "paused"
                        and _job_in_status(home, "full"), 120, what="status says paused")
        assert "no disk space" in view["reason"]
        assert (record(home, "full") or {}).get("state") != "paused"
        # And once writing is possible again, the record and the job file's folder agree with it
        free()
        wait_for(lambda: (record(home, "full") or {}).get("state") == "paused", 30, what="record says paused")
        wait_for(lambda: (home / "spool" / "paused" / "full.toml").is_file(), 30, what="job file in paused/")
        # And resume, without restarting the daemon, runs the job to the end
        assert "resume requested" in ctl("resume", "full").stdout
        wait_for(lambda: (record(home, "full") or {}).get("state") == "done", 120, what="done after resume")
        assert [h["to_state"] for h in record(home, "full")["history"]] == [
            "queued", "running", "paused", "queued", "running", "done"]
