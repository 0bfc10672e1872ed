"""Crash safety: killed at any moment, the worker resumes exactly where it was."""

from __future__ import annotations

import json
import random
import signal
import time

import pytest

from conftest import small_job
from farensed.core.exitcodes import EXIT_BAD_JOB, EXIT_OK, EXIT_STOPPED
from farensed.core.formats import TrainingState, read_metrics_jsonl, read_model
from farensed.core.paths import REPO_ROOT
from worker_support import make_run, run_worker, same_bits, start_worker

STEPS = 16


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run of STEPS steps."""
    run = make_run(tmp_path_factory.mktemp("ref"), "ref", small_job(STEPS))
    assert run_worker(run) == EXIT_OK
    return run


def _metric_keys(run):
    return [(r.kind, r.step) for r in read_metrics_jsonl(run / "metrics.jsonl")]


def _wait_for(path, timeout=60):
    end = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < end:
        time.sleep(0.02)
    return path.exists()


def test_sigkill_at_random_moments_then_restart_gives_bit_identical_adapters(reference, tmp_path):
    # Given the same job, killed with SIGKILL at several moments, once in the middle of a
    # checkpoint write, and restarted each time
    run = make_run(tmp_path, "killed", small_job(STEPS))
    assert run_worker(run, faults="kill_in_checkpoint@8") == -signal.SIGKILL
    assert list(run.glob(".tmp-checkpoint_epoch0_step8.*"))  # the half-written one is left behind
    rng = random.Random(7)
    for _ in range(3):
        p = start_worker(run)
        assert _wait_for(run / "progress.json")
        time.sleep(rng.uniform(0.3, 1.5))
        p.send_signal(signal.SIGKILL)
        p.wait()
    # When it finally runs to the end
    assert run_worker(run) == EXIT_OK
    # Then the adapters equal the uninterrupted run's bit for bit, best ones too
    assert same_bits(run / "adapters.safetensors", reference / "adapters.safetensors")
    assert same_bits(run / "adapters" / "adapters.safetensors", reference / "adapters" / "adapters.safetensors")
    # And the metrics history has each step once, like the reference
    assert _metric_keys(run) == _metric_keys(reference)
    ref_losses = [r.train_loss for r in read_metrics_jsonl(reference / "metrics.jsonl")]
    assert [r.train_loss for r in read_metrics_jsonl(run / "metrics.jsonl")] == ref_losses
    assert not list(run.glob(".tmp-*"))


def test_sigterm_checkpoints_and_exits_stopped_within_10_seconds_then_resumes_exactly(reference, tmp_path):
    # Given a running worker
    run = make_run(tmp_path, "stopped", small_job(STEPS))
    p = start_worker(run)
    assert _wait_for(run / "metrics.jsonl")
    while not read_metrics_jsonl(run / "metrics.jsonl"):
        time.sleep(0.02)
    # When it gets SIGTERM
    t0 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    code = p.wait(timeout=30)
    took = time.monotonic() - t0
    # Then it writes a checkpoint and exits with the graceful-stop code within 10 s
    assert code == EXIT_STOPPED and took < 10, (code, took)
    state = read_model(run / "training_state.json", TrainingState)
    assert state.status == "stopped" and state.checkpoint and (run / state.checkpoint / "manifest.json").exists()
    assert state.step < STEPS
    # And a restart finishes with the same adapters as the uninterrupted run
    assert run_worker(run) == EXIT_OK
    assert same_bits(run / "adapters.safetensors", reference / "adapters.safetensors")


def test_a_corrupt_newest_checkpoint_is_skipped_for_the_one_before(reference, tmp_path):
    # Given a run stopped after its step-8 checkpoint, whose newest checkpoint is then damaged
    run = make_run(tmp_path, "corrupt", small_job(STEPS))
    assert run_worker(run, faults="kill@10") == -signal.SIGKILL
    newest = run / "checkpoint_epoch0_step8"
    blob = newest / "optimizer.safetensors"
    blob.write_bytes(blob.read_bytes()[:-8] + b"garbage!")
    # When the worker starts again
    assert run_worker(run) == EXIT_OK
    # Then it resumed from step 4 (the log says so) and still ends bit-identical
    resumed = [json.loads(line) for line in (run / "worker.log").read_text().splitlines() if '"resumed"' in line]
    assert resumed[-1]["checkpoint"] == "checkpoint_epoch0_step4"
    assert same_bits(run / "adapters.safetensors", reference / "adapters.safetensors")


def test_a_stop_during_an_evaluation_does_not_wait_for_it_and_the_resume_redoes_it(reference, tmp_path):
    # Given a worker that gets SIGTERM in the middle of its step-8 evaluation
    run = make_run(tmp_path, "evalstop", small_job(STEPS))
    # When it runs, Then it stops at once with a checkpoint that remembers the pending evaluation
    assert run_worker(run, faults="term_in_eval@8") == EXIT_STOPPED
    state = read_model(run / "training_state.json", TrainingState)
    assert state.step == 8 and state.checkpoint == "checkpoint_epoch0_step8"
    assert json.loads((run / state.checkpoint / "state.json").read_text())["progress"]["eval_pending"] is True
    assert ("eval", 8) not in _metric_keys(run)
    # And the restart evaluates first, then ends exactly like the uninterrupted run
    assert run_worker(run) == EXIT_OK
    assert _metric_keys(run) == _metric_keys(reference)
    assert same_bits(run / "adapters" / "adapters.safetensors", reference / "adapters" / "adapters.safetensors")
    assert same_bits(run / "adapters.safetensors", reference / "adapters.safetensors")


def test_resuming_on_changed_training_data_is_refused_with_a_reason(tmp_path):
    # Given a run stopped after its step-4 checkpoint, on its own copy of the data
    data = tmp_path / "data"
    data.mkdir()
    for name in ("train.jsonl", "valid.jsonl"):
        (data / name).write_text((REPO_ROOT / "data" / name).read_text())
    run = make_run(tmp_path, "changed", small_job(STEPS, top={"data": str(data)}))
    assert run_worker(run, faults="kill@6") == -signal.SIGKILL
    # When the training data is edited before the restart
    lines = (data / "train.jsonl").read_text().splitlines()
    (data / "train.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    # Then the worker refuses to resume (a bad job, not a crash), saying why, and keeps the checkpoint
    assert run_worker(run) == EXIT_BAD_JOB
    state = read_model(run / "training_state.json", TrainingState)
    assert "training data" in state.reason and "changed since checkpoint_epoch0_step4" in state.reason
    assert (run / "checkpoint_epoch0_step4" / "manifest.json").exists()


def test_dropout_resumes_bit_identical_without_saving_the_rng(tmp_path):
    # Given a job with dropout (random masks every step), run once through and once killed mid-run
    job = small_job(8, lora={"dropout": 0.2})
    ref = make_run(tmp_path, "ref", job)
    assert run_worker(ref) == EXIT_OK
    run = make_run(tmp_path, "killed", job)
    assert run_worker(run, faults="kill@6") == -signal.SIGKILL
    # When it resumes from the step-4 checkpoint, which holds no RNG state
    assert not list(run.glob("checkpoint_*/rng.safetensors"))
    assert run_worker(run) == EXIT_OK
    # Then the masks were the same (reseeded from seed and step): the adapters match bit for bit
    assert same_bits(run / "adapters.safetensors", ref / "adapters.safetensors")
