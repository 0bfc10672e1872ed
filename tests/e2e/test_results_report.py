"""report, watch --once and answers on a run folder written from the pydantic models (no training)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from conftest import ctl, small_job
from farensed.core.atomic import atomic_write_json
from farensed.core.formats import Answer, Downshift, LiveProgress, MetricsRow, TrainingState, TrainingSummary
from farensed.core.spool import records
from farensed.results.answers import answers_text

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _row(kind: str, step: int, mb: int = 4, **kw) -> MetricsRow:
    return MetricsRow(kind=kind, step=step, epoch=0, micro_batch=mb, grad_accumulation=8 // mb,
                      tokens_seen=step * 100, elapsed=step * 0.5, **kw)


def _metrics() -> list[MetricsRow]:
    rows = []
    for step in range(2, 42, 2):
        mb = 4 if step <= 20 else 2  # the downshift at step 20 halves the micro-batch
        rows.append(_row("train", step, mb, train_loss=3.0 - step * 0.04, learning_rate=2e-4 * min(1, step / 10),
                         tokens_per_sec=400.0 - (100 if mb == 2 else 0), steps_per_sec=2.0,
                         active_memory_gb=6.0 if mb == 4 else 4.0, peak_memory_gb=7.5 if mb == 4 else 5.0))
        if step % 10 == 0:
            rows.append(_row("eval", step, mb, val_loss=2.9 - step * 0.03))
    return rows


def write_run(run: Path, status: str = "running", step: int = 40, total: int = 60) -> Path:
    """Given a run folder as the worker leaves it mid-run: metrics, state, progress, checkpoints, a restart."""
    run.mkdir(parents=True, exist_ok=True)
    (run / "job.toml").write_text(small_job(name="plotted", steps=total))
    (run / "metrics.jsonl").write_text("".join(r.model_dump_json() + "\n" for r in _metrics()))
    down = Downshift(step=20, from_micro_batch=4, to_micro_batch=2, grad_checkpoint=False, reason="over budget",
                     source="runtime_error", at=time.time())
    atomic_write_json(run / "training_state.json", TrainingState(
        status=status, step=step, total_steps=total, checkpoint="checkpoint_epoch0_step30", micro_batch=2,
        grad_accumulation=4, effective_batch=8, downshifts=[down], restarts=1, best_val_loss=1.7, best_step=40))
    atomic_write_json(run / "progress.json", LiveProgress(
        worker_pid=1, step=step, total_steps=total, epoch=0, train_loss=1.44, val_loss=1.7, best_val_loss=1.7,
        tokens_per_sec=300.0, steps_per_sec=2.0, active_memory_gb=4.0, peak_memory_gb=5.0, budget_gb=8.0,
        micro_batch=2, grad_accumulation=4, downshifts=1, last_checkpoint="checkpoint_epoch0_step30",
        eta_seconds=10.0, updated_at=time.time()))
    for s in (10, 30):
        (run / f"checkpoint_epoch0_step{s}").mkdir(exist_ok=True)
    log = [{"event": "checkpoint_saved", "step": s} for s in (10, 20, 30)] + [{"event": "resumed", "step": 30}]
    (run / "worker.log").write_text("".join(json.dumps(e) + "\n" for e in log) + "not json\n")
    return run


@pytest.fixture
def run(tmp_path) -> Path:
    return write_run(tmp_path / "checkpoints" / "plotted")


def test_report_writes_three_valid_pngs_and_a_page(run, tmp_path):
    # When
    out = ctl("report", str(run), "--home", str(tmp_path))
    # Then three PNGs decode to real images and the page links them
    import matplotlib.image as mpimg

    for name in ("loss_curves.png", "learning_rate.png", "memory_usage.png"):
        path = run / "plots" / name
        assert path.read_bytes()[:8] == PNG_SIGNATURE and path.stat().st_size > 10_000, name
        img = mpimg.imread(path)
        assert img.shape[0] > 300 and img.shape[1] > 600 and img.std() > 0.01, name
        assert f"plots/{name}" in (run / "report.md").read_text()
    page = (run / "report.md").read_text()
    assert "| best val loss | 1.7000 |" in page and "| downshifts | 1 |" in page and "| restarts | 1 |" in page
    assert "- checkpoint: 10, 20, 30" in page and "- downshift: 20" in page and "- restart: 30" in page
    assert "wrote" in out.stdout and "report.md" in out.stdout


def test_report_on_a_folder_without_metrics_is_one_clean_error(tmp_path):
    # Given a run folder whose worker has not logged yet
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "job.toml").write_text(small_job())
    # When / Then
    cp = ctl("report", str(tmp_path / "empty"), check=False)
    assert cp.returncode == 1 and cp.stderr.startswith("Error: ") and "no metrics yet" in cp.stderr
    assert "Traceback" not in cp.stderr


def test_unknown_job_is_one_clean_error(tmp_path):
    cp = ctl("report", "nope", "--home", str(tmp_path), check=False)
    assert cp.returncode == 1 and "no job 'nope'" in cp.stderr and "Traceback" not in cp.stderr


def test_watch_once_shows_the_monitor_fields_and_that_the_daemon_is_down(run, tmp_path):
    # Given a job id with a spool record pointing at the run folder, and no daemon
    jobs = tmp_path / "spool" / "jobs"
    jobs.mkdir(parents=True)
    records.save(jobs, records.JobRecord(id="plotted", file_name="plotted.toml", state="running", since=1.0, seq=1,
                                         submitted_at=1.0, started_at=2.0, output_dir=str(run), restarts=1))
    # When
    out = ctl("watch", "plotted", "--once", "--home", str(tmp_path)).stdout
    # Then the guide's monitor lines are there
    for text in ("Current loss", "1.4400", "Lowest val loss", "1.7000", "4.00 GB active", "budget 8 GB",
                 "Step tokens/s", "300", "Steps/sec", "2.00", "2 x 4", "1 downshift(s), last at step 20 (4->2)",
                 "checkpoint_epoch0_step30", "step 40/60", "66.7%", "ETA 0m10s", "daemon down", "not running"):
        assert text in out, text
    assert "job ended" not in out


def test_watch_without_job_picks_the_running_one_and_stops_when_it_has_ended(run, tmp_path):
    jobs = tmp_path / "spool" / "jobs"
    jobs.mkdir(parents=True)
    records.save(jobs, records.JobRecord(id="plotted", file_name="plotted.toml", state="done", since=1.0, seq=1,
                                         submitted_at=1.0, started_at=2.0, output_dir=str(run)))
    # When watching live (not --once), it returns by itself because the job is done
    out = ctl("watch", "--home", str(tmp_path), "--refresh", "0.2").stdout
    assert "job ended: done" in out and "plotted" in out


def test_answers_text_lists_each_prompt_and_answer(run):
    # Given a finished run's summary with two answers
    atomic_write_json(run / "training_summary.json", TrainingSummary(
        job="plotted", model="m", steps=60, epochs=1.0, final_train_loss=1.0, final_val_loss=1.5, best_val_loss=1.4,
        best_step=50, seconds=30.0, tokens=6000, tokens_per_sec=200.0, trainable_parameters=1, total_parameters=2,
        downshifts=[], restarts=0, skipped_nonfinite_steps=0, truncated_examples=0,
        answers=[Answer(prompt="Quando foi fundado?", answer="Em 1910.\nEm Faro."), Answer(prompt="E?", answer="")],
        adapters=str(run), best_adapters=str(run / "adapters")))
    # When / Then
    text = answers_text(run)
    assert text.splitlines() == ["answers (best adapters):", "  Q: Quando foi fundado?", "  A: Em 1910.",
                                 "     Em Faro.", "  Q: E?", "  A: (empty answer)"]
    assert answers_text(run.parent / "missing") == ""


def test_an_out_of_memory_inference_becomes_one_clear_message():
    from farensed.core.errors import FarensedError
    from farensed.core.exitcodes import EXIT_OOM_EXHAUSTED
    from farensed.results.adapters import Target
    from farensed.results.infer_client import _check

    target = Target(model="models/big", adapters=None, label="best")
    # Given the worker's OOM exit code, or MLX's abort message with a crash code
    for code, err in ((EXIT_OOM_EXHAUSTED, "out of memory: ..."), (-6, "[malloc] Unable to allocate 1073741824 bytes")):
        # Then the client says memory is too tight and what to do
        with pytest.raises(FarensedError, match="not enough memory to load best .*another job may be training"):
            _check(code, err, target)
    with pytest.raises(FarensedError, match="failed: ValueError: bad"):
        _check(1, "Traceback...\nValueError: bad\n", target)
    _check(0, "", target)


def test_ask_with_a_missing_base_model_fails_in_one_line(tmp_path):
    # Given a run folder whose job names a model folder that does not exist, with adapters in place
    run = tmp_path / "r"
    (run / "adapters").mkdir(parents=True)
    (run / "job.toml").write_text(small_job(name="r", top={"model": f"{tmp_path}/no-model"}))
    (run / "adapters" / "adapters.safetensors").write_bytes(b"")
    (run / "adapters" / "adapter_config.json").write_text("{}")
    # When
    cp = ctl("ask", str(run), "Olá", "--home", str(tmp_path), check=False)
    # Then
    assert cp.returncode == 1 and cp.stderr.count("\n") <= 2 and "failed" in cp.stderr, cp.stderr
    assert "Traceback" not in cp.stderr
