"""Out-of-memory changes memory, not math; non-finite losses never reach the weights."""

from __future__ import annotations

from worker_support import make_run, rel_norm_diff, run_worker, small_job

from farensed.exitcodes import EXIT_DIVERGED, EXIT_OK, EXIT_OOM_EXHAUSTED
from farensed.formats import TrainingState, TrainingSummary, read_metrics_jsonl, read_model

STEPS = 10
# Gradients agree to 1e-5 (test_worker_math); Adam's per-element g/sqrt(v) turns the last-bit
# differences of near-zero gradient entries into visible ones, ~1e-3 after 10 steps.
TOLERANCE = 5e-3


def _state(run):
    return read_model(run / "training_state.json", TrainingState)


def _job(batch: int, accumulation: int, **memory) -> str:
    return small_job(STEPS, training={"batch_size": batch, "grad_accumulation": accumulation}, memory=memory)


def test_a_budget_that_batch_4_exceeds_downshifts_to_the_batch_that_fits(tmp_path):
    # Given a reference run at micro-batch 1 x 8, and its highest measured peak memory
    ref = make_run(tmp_path, "ref", _job(1, 8))
    assert run_worker(ref) == EXIT_OK
    peak_mb1 = max(r.peak_memory_gb for r in read_metrics_jsonl(ref / "metrics.jsonl") if r.kind == "train")
    # When the same job runs at 4 x 2 with a budget 20% above micro-batch 1's peak
    run = make_run(tmp_path, "budget", _job(4, 2, budget_gb=peak_mb1 * 1.2))
    assert run_worker(run) == EXIT_OK
    # Then it stepped down to micro-batch 1 (accumulation 8), recorded why, and finished
    state = _state(run)
    assert state.status == "done" and state.micro_batch == 1 and state.grad_accumulation == 8
    assert [d.to_micro_batch for d in state.downshifts] == [2, 1]
    assert all(d.source == "budget" and "over the budget" in d.reason for d in state.downshifts)
    assert len(TrainingSummary.model_validate_json((run / "training_summary.json").read_text()).downshifts) == 2
    # And its adapters match the run started at micro-batch 1 within float tolerance
    assert rel_norm_diff(run / "adapters.safetensors", ref / "adapters.safetensors") < TOLERANCE


def test_an_mlx_out_of_memory_error_redoes_the_same_step_at_half_the_micro_batch(tmp_path):
    # Given the job at 4 x 2 hit by Metal's out-of-memory RuntimeError as step 3 starts,
    # and a reference started at 2 x 4
    run, ref = make_run(tmp_path, "oom", _job(4, 2)), make_run(tmp_path, "ref", _job(2, 4))
    assert run_worker(ref) == EXIT_OK
    # When it runs
    assert run_worker(run, faults="oom@3") == EXIT_OK
    # Then the downshift is recorded at step 3, the effective batch unchanged, no step lost
    [d] = _state(run).downshifts
    assert (d.step, d.from_micro_batch, d.to_micro_batch, d.source) == (3, 4, 2, "runtime_error")
    assert "Insufficient Memory" in d.reason
    assert _state(run).step == STEPS
    assert rel_norm_diff(run / "adapters.safetensors", ref / "adapters.safetensors") < TOLERANCE


def test_when_nothing_is_left_to_lower_the_job_fails_saying_what_to_change(tmp_path):
    # Given a budget no micro-batch fits
    run = make_run(tmp_path, "tiny", _job(4, 2, budget_gb=0.0001))
    # When it runs, Then it walks the whole ladder and exits with the exhausted code
    assert run_worker(run) == EXIT_OOM_EXHAUSTED
    state = _state(run)
    assert [(d.to_micro_batch, d.grad_checkpoint) for d in state.downshifts] == [(2, False), (1, False), (1, True)]
    assert state.status == "failed" and "max_seq_length" in state.reason


def test_a_nan_step_is_skipped_and_training_goes_on(tmp_path):
    # Given a job whose step 3 produces a NaN loss
    run = make_run(tmp_path, "nan", _job(4, 2))
    # When it runs, Then it finishes, with the step counted as skipped and finite metrics
    assert run_worker(run, faults="nan@3") == EXIT_OK
    summary = TrainingSummary.model_validate_json((run / "training_summary.json").read_text())
    assert summary.skipped_nonfinite_steps == 1 and summary.steps == STEPS
    losses = [r.train_loss for r in read_metrics_jsonl(run / "metrics.jsonl") if r.kind == "train"]
    assert all(x is not None and x == x for x in losses)


def test_three_nonfinite_steps_in_a_row_stop_the_job_keeping_the_last_good_checkpoint(tmp_path):
    # Given a job that diverges from step 6 on (checkpoint every 4 steps)
    run = make_run(tmp_path, "diverge", _job(4, 2))
    # When it runs
    assert run_worker(run, faults="nan_from@6") == EXIT_DIVERGED
    # Then it failed with a reason, and the step-4 checkpoint is the last one
    state = _state(run)
    assert state.status == "failed" and "NaN" in state.reason and "learning_rate" in state.reason
    assert state.checkpoint == "checkpoint_epoch0_step4"
    assert sorted(p.name for p in run.glob("checkpoint_*")) == ["checkpoint_epoch0_step4"]
