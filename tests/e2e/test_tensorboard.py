"""[report] tensorboard = true: the worker's scalars as TensorBoard event files in the run folder, read
back from the files themselves; validate names the missing extra."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from tensorboardX.proto import event_pb2

from conftest import REPO, small_job
from worker_support import make_run, run_worker


def read_events(run: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of the run folder's event files, by tag: TFRecord framing (length, crc, data, crc)."""
    found: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for path in sorted(run.glob("events.out.tfevents.*")):
        data, pos = path.read_bytes(), 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos:pos + 8])
            event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + length])
            pos += 12 + length + 4
            for v in event.summary.value:
                found[v.tag].append((event.step, v.simple_value))
    return found


def test_the_worker_writes_its_scalars_as_tensorboard_events(tmp_path):
    # Given a small job asking for TensorBoard event files
    run = make_run(tmp_path, "tb", small_job(steps=8, report={"tensorboard": True}))
    # When the worker runs it
    assert run_worker(run) == 0
    # Then the run folder holds event files with the same figures as metrics.jsonl, at the same steps
    events = read_events(run)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    trains = [r for r in rows if r["kind"] == "train"]
    assert [s for s, _ in events["loss/train"]] == [r["step"] for r in trains] == [2, 4, 6, 8]
    assert [round(v, 4) for _, v in events["loss/train"]] == [round(r["train_loss"], 4) for r in trains]
    assert [s for s, _ in events["loss/val"]] == [r["step"] for r in rows if r["kind"] == "eval"]
    for tag in ("learning_rate", "speed/tokens_per_sec", "memory/peak_gb", "memory/active_gb"):
        assert len(events[tag]) == 4, tag


def test_without_the_option_no_event_file_is_written(tmp_path):
    run = make_run(tmp_path, "plain", small_job(steps=2))
    assert run_worker(run) == 0
    assert not list(run.glob("events.out.tfevents.*"))


def test_validate_names_the_missing_extra(home):
    # Given a job asking for TensorBoard, in an interpreter where tensorboardX cannot be imported
    job = home / "tb.toml"
    job.write_text(small_job(steps=2, report={"tensorboard": True}))
    blocked = ("import sys; sys.modules['tensorboardX'] = None\n"  # how Python marks a module as not importable
               "from farensed.cli.main import main; sys.argv[0] = 'farensectl'; main()")
    # When validate checks it
    cp = subprocess.run([sys.executable, "-c", blocked, "validate", str(job)], capture_output=True, text=True,
                        cwd=REPO, timeout=120)
    # Then it fails naming the key, its line and the install command
    assert cp.returncode == 1
    line = next(n for n, text in enumerate(job.read_text().splitlines(), 1) if text.startswith("tensorboard"))
    assert f"tb.toml:{line}: report.tensorboard:" in cp.stderr
    assert "pip install 'farensed[tensorboard]'" in cp.stderr
