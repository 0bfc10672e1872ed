"""The checkpoint's state.json: one model of the trainer's progress, and version 1 still read."""

from __future__ import annotations

from farensed.core.formats import CheckpointState, Cursor, MetricsRow, Progress

V1 = {"schema_version": 1, "step": 8, "cursor": {"epoch": 0, "index": 8}, "micro_batch": 4, "grad_accumulation": 2,
      "grad_checkpoint": False, "rng_seed_base": 0, "best_val_loss": 2.5, "best_step": 4, "window_loss_sum": 3.0,
      "window_tokens": 12, "nonfinite_streak": 0, "tokens_seen": 900, "elapsed": 1.5, "val_loss": 2.6,
      "skipped_nonfinite": 1, "eval_pending": True, "data_fingerprint": "abc"}


def test_a_version_1_checkpoint_state_is_read_as_the_trainers_progress():
    # Given state.json as farensed 0.1 wrote it (progress fields flat)
    cs = CheckpointState.model_validate(V1)
    # Then every progress field lands in `progress`, the rest stays beside it, and it is now version 2
    assert cs.schema_version == 2 and cs.micro_batch == 4 and cs.data_fingerprint == "abc"
    assert cs.progress == Progress(step=8, cursor=Cursor(epoch=0, index=8), best_val_loss=2.5, best_step=4,
                                   window_loss_sum=3.0, window_tokens=12, tokens_seen=900, elapsed=1.5, val_loss=2.6,
                                   skipped_nonfinite=1, eval_pending=True)


def test_the_metrics_rows_travel_beside_the_progress_not_inside_it():
    # Given progress holding metrics rows in memory
    row = MetricsRow(kind="train", step=1, epoch=0, micro_batch=4, grad_accumulation=2, tokens_seen=10, elapsed=0.1)
    cs = CheckpointState(progress=Progress(step=1, metrics=[row]), micro_batch=4, grad_accumulation=2,
                         grad_checkpoint=False, rng_seed_base=0)
    # Then state.json leaves them out (the checkpoint's metrics.jsonl has them), and reads back equal otherwise
    text = cs.model_dump_json()
    assert "metrics" not in text
    back = CheckpointState.model_validate_json(text)
    assert back.progress.step == 1 and back.progress.metrics == [] and back.schema_version == 2
