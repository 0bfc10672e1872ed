"""The worker against its disk: a write the disk refuses pauses the run and leaves nothing behind,
a checkpoint asks for space in proportion to its size, a torn training_state.json is set aside and
the run resumes from its newest good checkpoint, and a damaged checkpoint never pushes out a good one."""

from __future__ import annotations

import json
import os
import subprocess

from conftest import small_job
from farensed.core.exitcodes import EXIT_NO_SPACE, EXIT_OK
from farensed.core.formats import TrainingState, read_model
from worker_support import make_run, run_worker, same_bits

CADENCE = {"checkpoint_every": 4, "eval_every": 4}


def _events(run, name):
    return [e for e in map(json.loads, (run / "worker.log").read_text().splitlines()) if e.get("event") == name]


def test_a_refused_adapters_write_pauses_as_no_space_and_leaves_no_temp_file(tmp_path):
    # Given a run whose first best-adapters file is written into /dev/full (the kernel's ENOSPC)
    run = make_run(tmp_path, "full", small_job(8, cadence=CADENCE))
    # When the worker saves the best adapters after its first evaluation
    code = run_worker(run, faults="full_write@0")
    # Then it stops as "no space" (the daemon pauses the job), with the folder named, no traceback,
    # and no temporary file holding the disk's last bytes
    assert code == EXIT_NO_SPACE
    state = read_model(run / "training_state.json", TrainingState)
    assert state.status == "stopped" and state.reason.startswith(f"{run / 'adapters'}: writing ")
    assert "free some space, then farensectl resume" in state.reason
    assert "Traceback" not in (run / "worker.log").read_text()
    assert not [p.name for p in run.rglob("*.tmp*")]
    # And once the disk takes writes again, the run ends
    assert run_worker(run) == EXIT_OK


def test_a_checkpoint_asks_for_free_space_in_proportion_to_its_size(tmp_path):
    # Given a run whose checkpoints are about 0.4 MB, on a 6 MiB filesystem (root: a real tmpfs)
    # or, for a user, a space check that sees 0 bytes free
    folder = tmp_path / "small"
    folder.mkdir()
    root = os.geteuid() == 0
    if root:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(folder)], check=True)
    try:
        run = make_run(folder, "r", small_job(8, cadence=CADENCE))
        code = run_worker(run, faults="" if root else "disk_full@4")
        # Then on the small disk the run ends (it asked for about 1.8 MB, not 64 MiB); with nothing
        # free, the reason says what a checkpoint of this size needs
        if root:
            assert code == EXIT_OK and (run / "checkpoint_epoch0_step8").is_dir()
        else:
            reason = read_model(run / "training_state.json", TrainingState).reason
            assert code == EXIT_NO_SPACE and "0 B free, a checkpoint of 394.5 kB needs 1.8 MB" in reason
    finally:
        if root:
            subprocess.run(["umount", "-l", str(folder)], check=True)


def test_a_torn_training_state_is_set_aside_and_the_run_resumes_from_its_newest_good_checkpoint(tmp_path):
    # Given an uninterrupted run, and the same job killed at step 10 (checkpoints 4 and 8 written)
    # whose training_state.json is then torn
    ref = make_run(tmp_path, "ref", small_job(12, cadence=CADENCE))
    assert run_worker(ref) == EXIT_OK
    run = make_run(tmp_path, "torn", small_job(12, cadence=CADENCE))
    assert run_worker(run, faults="kill@10") != EXIT_OK
    torn = b'{"schema_version": 1, "status": "runn'
    (run / "training_state.json").write_bytes(torn)
    # When the worker starts again
    assert run_worker(run) == EXIT_OK
    # Then it kept the torn file aside, byte for byte, resumed from step 8 and ended as the reference did
    [aside] = run.glob("training_state.json.unreadable-*")
    assert aside.read_bytes() == torn
    assert _events(run, "training_state_unreadable")[0]["kept_as"] == aside.name
    assert _events(run, "resumed")[-1]["checkpoint"] == "checkpoint_epoch0_step8"
    assert same_bits(run / "adapters.safetensors", ref / "adapters.safetensors")


def test_a_damaged_checkpoint_does_not_count_toward_keep_checkpoints(tmp_path):
    # Given a run keeping 2 checkpoints, whose step-8 checkpoint is damaged once written
    run = make_run(tmp_path, "rot", small_job(12, cadence={**CADENCE, "keep_checkpoints": 2}))
    # When it writes its step-12 checkpoint and prunes
    assert run_worker(run, faults="corrupt_checkpoint@8") == EXIT_OK
    # Then the damaged one went, and the older good one stayed: two checkpoints to resume from
    left = sorted(p.name for p in run.glob("checkpoint_*"))
    assert "checkpoint_epoch0_step8" not in left
    assert {"checkpoint_epoch0_step4", "checkpoint_epoch0_step12"} <= set(left)
