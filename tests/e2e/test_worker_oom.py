"""Out-of-memory changes memory, not math: budgets split steps by tokens, failures correct the
memory model, and non-finite losses never reach the weights.

What is compared, and why it holds on any IEEE CPU:
- Which examples each step trains on (tokens_seen after every logged step) and which steps
  exist (the metrics rows): exact integers, compared exactly.
- A step's gradient at different splits: tests/test_worker_math.py, 1e-5 relative.
- Final adapters only between runs with the same split of every step in the same process
  setting (a resumed run and an uninterrupted one): bit for bit. Runs split differently are
  never compared by their weights: Adam's g/sqrt(v) turns last-bit differences of near-zero
  gradient entries into visible ones within a few steps, by an amount that depends on the BLAS.
"""

from __future__ import annotations

import json
import math
import signal

import pytest

from farensed.core.exitcodes import EXIT_BAD_JOB, EXIT_DIVERGED, EXIT_OK
from farensed.core.formats import MemoryModel, TrainingState, TrainingSummary, read_metrics_jsonl, read_model
from farensed.core.jobfile import load_job
from farensed.memory import plan as memplan
from worker_support import make_run, run_worker, same_bits, small_job

STEPS = 10
GB = 1024**3


def _state(run) -> TrainingState:
    return read_model(run / "training_state.json", TrainingState)


def _job(batch: int = 4, accumulation: int = 2, steps: int = STEPS, **memory) -> str:
    return small_job(steps, training={"batch_size": batch, "grad_accumulation": accumulation}, memory=memory)


def _trains(run):
    return [r for r in read_metrics_jsonl(run / "metrics.jsonl") if r.kind == "train"]


def _same_steps_and_examples(run, ref) -> None:
    """Every step exists once, in order, and trained the same examples (token counts are exact)."""
    rows, ref_rows = read_metrics_jsonl(run / "metrics.jsonl"), read_metrics_jsonl(ref / "metrics.jsonl")
    assert [(r.kind, r.step) for r in rows] == [(r.kind, r.step) for r in ref_rows]
    assert [r.tokens_seen for r in rows] == [r.tokens_seen for r in ref_rows]


def _splits(rows) -> list[list[int]]:
    """The split of every step in these rows (one entry per step), from the rows' 'splits' counts."""
    out = []
    for r in rows:
        for part in (r.splits or "").split():
            label, count = part.rsplit(":", 1)
            if "x" in label:
                rows_ = [int(label.split("x")[0])] * int(label.split("x")[1])
            else:
                rows_ = [int(x) for x in label.split("+")]
            out += [rows_] * int(count)
    return out


def _budget(run) -> float:
    return load_job(run / "job.toml").memory.budget_gb


def _events(run, name):
    return [json.loads(line) for line in (run / "worker.log").read_text().splitlines() if f'"{name}"' in line]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """No budget: every step in micro-batches of 4."""
    run = make_run(tmp_path_factory.mktemp("ref"), "ref", _job())
    assert run_worker(run) == EXIT_OK
    return run


@pytest.fixture(scope="module")
def budgeted(tmp_path_factory, reference):
    """A budget of 65% of the unbudgeted peak: long steps must split narrower, short ones less."""
    budget = max(r.peak_memory_gb for r in _trains(reference)) * 0.65
    run = make_run(tmp_path_factory.mktemp("budget"), "budget", _job(budget_gb=budget))
    assert run_worker(run) == EXIT_OK
    return run


def test_a_budget_splits_each_step_by_its_tokens_without_changing_its_examples(budgeted, reference):
    state = _state(budgeted)
    model = state.memory_model
    # Then the memory was measured once, before the first step, and is saved in the state
    [measured] = _events(budgeted, "memory_measured")
    assert model is not None and model.budget_bytes and model.probe_seconds > 0 and measured["seconds"] > 0
    assert model.why.startswith("checkpointing ")
    # And steps were split as the plan says, into micro-batches of several sizes, each step whole
    splits = _splits(_trains(budgeted))
    assert len(splits) == STEPS and all(sum(s) == 8 for s in splits)
    assert len({memplan.label(s) for s in splits}) >= 2 and max(max(s) for s in splits) > min(min(s) for s in splits)
    # And the peak stayed within the budget, with no step-down
    assert all(r.peak_memory_gb * GB <= model.budget_bytes for r in _trains(budgeted))
    assert state.downshifts == [] and state.status == "done"
    # And every step trained exactly the examples of the unbudgeted run's step
    _same_steps_and_examples(budgeted, reference)
    # And MLX's own limit was the budget (all of it on a CPU), with CUDA graphs off for the job
    [limit] = _events(budgeted, "memory_limit")
    assert limit["mlx_limit_gb"] == pytest.approx(_budget(budgeted), abs=1e-3) and limit["cuda_graphs"] == "0"


def test_a_budgeted_job_runs_without_cuda_graphs_unless_the_environment_says(tmp_path):
    from farensed.worker.__main__ import budget_environment

    def env_for(job_text: str, env: dict) -> dict:
        (tmp_path / "job.toml").write_text(job_text)
        budget_environment(tmp_path, env)
        return env

    assert env_for(_job(budget_gb=12), {}) == {"MLX_USE_CUDA_GRAPHS": "0"}
    assert env_for(_job(budget_gb=12), {"MLX_USE_CUDA_GRAPHS": "1"}) == {"MLX_USE_CUDA_GRAPHS": "1"}
    assert env_for(_job(), {}) == {}  # no budget: MLX's default
    assert env_for('name = "x\n[training', {}) == {}  # a broken job file is the run's to report


def test_sigkill_with_a_budget_then_restart_gives_bit_identical_adapters(budgeted, tmp_path):
    # Given the budgeted job killed after measuring, before its first checkpoint, then after it
    budget = _budget(budgeted)
    run = make_run(tmp_path, "killed", _job(budget_gb=budget))
    assert run_worker(run, faults="kill@3") == -signal.SIGKILL
    model = _state(run).memory_model
    assert model is not None  # saved as soon as it was measured
    assert run_worker(run, faults="kill@7") == -signal.SIGKILL
    assert _state(run).checkpoint == "checkpoint_epoch0_step4"
    # When it runs to the end (from the step-4 checkpoint)
    assert run_worker(run) == EXIT_OK
    assert _events(run, "resumed")[-1]["checkpoint"] == "checkpoint_epoch0_step4"
    # Then only the first process measured: the restarts split by the saved model
    assert len(_events(run, "memory_measured")) == 1 and _state(run).memory_model == model
    # And its adapters equal, bit for bit, those of an uninterrupted run given the same model (a
    # second probe would time things differently and may choose the other checkpointing mode; the
    # model, not the probe, is what a resume must reproduce). The reference never probed: the
    # probe's forward and backward left no trace in the math.
    ref = _seeded(tmp_path, "ref", model, budget)
    assert run_worker(ref) == EXIT_OK and not _events(ref, "memory_measured")
    assert same_bits(run / "adapters.safetensors", ref / "adapters.safetensors")
    _same_steps_and_examples(run, ref)


def _seeded(tmp_path, name: str, model: MemoryModel, budget: float):
    """A run folder whose training_state.json already holds a memory model (as a restart finds it)."""
    run = make_run(tmp_path, name, _job(budget_gb=budget))
    seeded = TrainingState(micro_batch=4, grad_accumulation=2, effective_batch=8, memory_model=model)
    (run / "training_state.json").write_text(seeded.model_dump_json())
    return run


def test_a_budget_overrun_corrects_the_model_redoes_the_step_and_short_steps_stay_wide(budgeted, tmp_path):
    # Given a run whose saved memory model says a token costs half what it does (a line alone,
    # without the measured points and the cap that would otherwise hold it)
    true = _state(budgeted).memory_model
    wrong = true.model_copy(update={"modes": [m.model_copy(update={"per_token_bytes": m.per_token_bytes / 2,
                                                                   "points": [], "token_cap": None})
                                              for m in true.modes]})
    run = _seeded(tmp_path, "wrong", wrong, _budget(budgeted))  # the same settings: the model is used
    # When it trains
    assert run_worker(run) == EXIT_OK
    # Then the measured peak over the budget stepped the micro-batch down, and corrected the model
    state = _state(run)
    assert state.downshifts and all(d.source == "budget" and "over the budget" in d.reason for d in state.downshifts)
    last = state.downshifts[-1]
    fixed = memplan.mode(state.memory_model)
    assert state.memory_model.corrections == len(state.downshifts)
    assert memplan.predict(fixed, last.tokens) > true.usable_bytes
    # And no step was lost or repeated, each trained its own examples, each step whole
    _same_steps_and_examples(run, budgeted)
    after = [r for r in _trains(run) if r.step > last.step]
    assert all(sum(s) == 8 for s in _splits(_trains(run)))
    # And after the last correction no peak went over, and shorter steps still ran wider than the longest
    assert all(r.peak_memory_gb * GB <= true.budget_bytes for r in after)
    widest = true.modes[0].points[0].width  # the probe's first point: the longest example
    assert max(max(s) for s in _splits(after)) > memplan.rows_at(state.memory_model, widest)


def test_an_mlx_out_of_memory_error_redoes_the_same_step_narrower_without_getting_stuck(reference, budgeted,
                                                                                      tmp_path):
    # Given no budget, and Metal's out-of-memory RuntimeError as step 3 starts
    run = make_run(tmp_path, "oom", _job())
    # When it runs
    assert run_worker(run, faults="oom@3") == EXIT_OK
    # Then the downshift is recorded at step 3 with the micro-batch that failed
    [d] = _state(run).downshifts
    assert (d.step, d.from_micro_batch, d.source) == (3, 4, "runtime_error") and d.to_micro_batch < 4
    assert "Insufficient Memory" in d.reason and d.tokens == 4 * d.width
    # And every step was done once with its own examples, each step whole (effective batch 8)
    _same_steps_and_examples(run, reference)
    splits = _splits(_trains(run))
    assert all(sum(s) == 8 for s in splits)
    # And the model now holds a token cap, not a micro-batch: shorter steps run wider than the
    # longest ones (the job is not stuck at one narrow micro-batch for every step)
    model = _state(run).memory_model
    cap = memplan.mode(model).token_cap
    widest = _state(budgeted).memory_model.modes[0].points[0].width  # the probe's first point: the longest example
    assert cap is not None and cap < d.tokens
    assert max(max(s) for s in splits[3:]) > memplan.rows_at(model, widest) >= 1


def test_a_budget_smaller_than_the_model_fails_before_training_saying_so(tmp_path):
    # Given a budget of 100 kB for a model of megabytes
    run = make_run(tmp_path, "tiny", _job(budget_gb=0.0001))
    # When it runs, Then it exits as a bad job before any step, naming the model's size
    assert run_worker(run) == EXIT_BAD_JOB
    state = _state(run)
    assert state.status == "failed" and state.step == 0 and "smaller than the model itself" in state.reason
    assert not _trains(run)


def test_a_budget_too_small_for_one_long_example_fails_saying_what_would_fit(budgeted, tmp_path):
    # Given a budget above the model itself that holds 16 tokens without checkpointing: not one
    # longest example (96 tokens), with checkpointing (a fraction of the memory a token) either
    plain = memplan.mode(_state(budgeted).memory_model, False)
    usable = plain.base_bytes + 16 * plain.per_token_bytes
    run = make_run(tmp_path, "small", _job(budget_gb=usable / (1 - memplan.MARGIN) / GB))
    # When it runs, Then it fails before training with the largest max_seq_length and the smallest budget
    assert run_worker(run) == EXIT_BAD_JOB
    state = _state(run)
    assert state.step == 0 and "even with gradient checkpointing" in state.reason
    assert "max_seq_length to at most" in state.reason and "budget_gb to at least" in state.reason


def test_a_nan_step_is_skipped_and_training_goes_on(tmp_path):
    # Given a job whose step 3 produces a NaN loss
    run = make_run(tmp_path, "nan", _job())
    # When it runs, Then it finishes, with the step counted as skipped and finite metrics
    assert run_worker(run, faults="nan@3") == EXIT_OK
    summary = TrainingSummary.model_validate_json((run / "training_summary.json").read_text())
    assert summary.skipped_nonfinite_steps == 1 and summary.steps == STEPS
    losses = [r.train_loss for r in _trains(run)]
    assert all(x is not None and math.isfinite(x) for x in losses)


def test_three_nonfinite_steps_in_a_row_stop_the_job_keeping_the_last_good_checkpoint(tmp_path):
    # Given a job that diverges from step 6 on (checkpoint every 4 steps)
    run = make_run(tmp_path, "diverge", _job())
    # When it runs
    assert run_worker(run, faults="nan_from@6") == EXIT_DIVERGED
    # Then it failed with a reason, and the step-4 checkpoint is the last one
    state = _state(run)
    assert state.status == "failed" and "NaN" in state.reason and "learning_rate" in state.reason
    assert state.checkpoint == "checkpoint_epoch0_step4"
    assert sorted(p.name for p in run.glob("checkpoint_*")) == ["checkpoint_epoch0_step4"]
