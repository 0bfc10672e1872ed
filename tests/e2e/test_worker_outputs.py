"""What a run leaves behind: the guide's files, adapters mlx-lm accepts unchanged, clear failures."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import small_job
from farensed.core.exitcodes import EXIT_BAD_JOB, EXIT_OK
from farensed.core.formats import TrainingState, TrainingSummary, read_model
from farensed.core.paths import REPO_ROOT
from worker_support import make_run, run_worker

TINY = REPO_ROOT / "models" / "farense-tiny"
TINY_4BIT = REPO_ROOT / "models" / "farense-tiny-4bit"
PROMPT = "Quando foi fundado o Sporting Clube Farense?"


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    run = make_run(tmp_path_factory.mktemp("out"), "done", small_job(8, generate={"prompts": [PROMPT]}))
    assert run_worker(run) == EXIT_OK
    return run


def test_a_finished_run_has_every_file_the_guide_lists(finished):
    # Then the guide's layout is there
    for name in ("training_metrics.json", "training_metrics.csv", "training_summary.json", "training_state.json",
                 "adapters/adapters.safetensors", "adapters.safetensors", "adapter_config.json",
                 "training_config.json", "checkpoint_epoch0_step8/manifest.json"):
        assert (finished / name).is_file(), name
    summary = TrainingSummary.model_validate_json((finished / "training_summary.json").read_text())
    assert summary.steps == 8 and summary.best_val_loss is not None and summary.tokens > 0
    assert [a.prompt for a in summary.answers] == [PROMPT] and isinstance(summary.answers[0].answer, str)
    metrics = json.loads((finished / "training_metrics.json").read_text())
    assert [m["step"] for m in metrics if m["kind"] == "train"] == [2, 4, 6, 8]
    header = (finished / "training_metrics.csv").read_text().splitlines()[0].split(",")
    assert {"step", "epoch", "train_loss", "val_loss", "learning_rate", "tokens_per_sec", "peak_memory_gb",
            "micro_batch", "grad_accumulation", "elapsed"} <= set(header)
    assert read_model(finished / "training_state.json", TrainingState).status == "done"


def test_mlx_lm_loads_and_generates_with_the_adapters_unchanged(finished):
    from mlx_lm import generate, load

    for folder in (finished, finished / "adapters"):
        model, tok = load(str(TINY), adapter_path=str(folder))
        text = tok.apply_chat_template([{"role": "user", "content": PROMPT}], add_generation_prompt=True,
                                       tokenize=False)
        assert isinstance(generate(model, tok, prompt=text, max_tokens=4), str)


def test_mlx_lm_fuse_accepts_the_output_folder(finished, tmp_path):
    fused = tmp_path / "fused"
    proc = subprocess.run([sys.executable, "-m", "mlx_lm", "fuse", "--model", str(TINY), "--adapter-path",
                           str(finished), "--save-path", str(fused)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    from mlx_lm import load
    model, _ = load(str(fused))
    assert (fused / "config.json").is_file()


def test_qlora_trains_a_4bit_base(tmp_path):
    # Given the 4-bit variant of the demo model
    run = make_run(tmp_path, "qlora", small_job(4, top={"model": str(TINY_4BIT)}))
    # When it trains, Then it finishes and its adapters load on the 4-bit base
    assert run_worker(run) == EXIT_OK
    from mlx_lm import load
    model, _ = load(str(TINY_4BIT), adapter_path=str(run))
    assert type(model.layers[-1].self_attn.q_proj.linear).__name__ == "QuantizedLinear"


def test_an_invalid_json_line_stops_the_job_naming_file_and_line(tmp_path):
    # Given data whose third line is broken
    data = tmp_path / "data"
    data.mkdir()
    lines = (REPO_ROOT / "data" / "train.jsonl").read_text().splitlines()[:20]
    lines[2] = lines[2][:-5]
    (data / "train.jsonl").write_text("\n".join(lines) + "\n")
    run = make_run(tmp_path, "bad", small_job(4, top={"data": str(data)}))
    # When the worker runs, Then it exits with the bad-job code and says where
    assert run_worker(run) == EXIT_BAD_JOB
    reason = read_model(run / "training_state.json", TrainingState).reason
    assert f"{data / 'train.jsonl'}:3: not valid JSON" in reason


def test_no_validation_set_means_training_without_a_validation_loss_said_once(tmp_path):
    # Given data with train.jsonl only
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.jsonl").write_text((REPO_ROOT / "data" / "train.jsonl").read_text())
    run = make_run(tmp_path, "noval", small_job(4, top={"data": str(data)}))
    # When it runs, Then it finishes with no validation loss, and the log says so once; its evals
    # only answer the probe's training questions (there is no validation sample to ask)
    assert run_worker(run) == EXIT_OK
    evals = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if '"eval"' in line]
    assert [r["step"] for r in evals] == [0, 4]
    assert all(r["val_loss"] is None and r["probe_f1"] is not None and r["probe_valid_f1"] is None for r in evals)
    assert (run / "worker.log").read_text().count("\"event\": \"no_validation_set\"") == 1
    assert (run / "adapters" / "adapters.safetensors").is_file()


def test_dora_trains_and_mlx_lm_loads_it(tmp_path):
    run = make_run(tmp_path, "dora", small_job(4, lora={"type": "dora"}))
    assert run_worker(run) == EXIT_OK
    assert json.loads((run / "adapter_config.json").read_text())["fine_tune_type"] == "dora"
    from mlx_lm import load
    model, _ = load(str(TINY), adapter_path=str(run))
    assert type(model.layers[-1].self_attn.q_proj).__name__ == "DoRALinear"


def test_sequences_over_max_seq_length_are_truncated_and_said_once(tmp_path):
    # Given a max_seq_length shorter than most examples
    run = make_run(tmp_path, "short", small_job(4, training={"max_seq_length": 48}))
    # When it trains, Then it finishes, counts the truncated examples and logs it once
    assert run_worker(run) == EXIT_OK
    summary = TrainingSummary.model_validate_json((run / "training_summary.json").read_text())
    assert summary.truncated_examples > 100
    assert (run / "worker.log").read_text().count('"event": "sequences_truncated"') == 1


def test_checkpoints_are_also_written_by_the_clock(tmp_path):
    # Given a step cadence never reached and a time cadence of ~0.2 s
    run = make_run(tmp_path, "clock", small_job(60, cadence={"checkpoint_every": 1000,
                                                            "checkpoint_every_minutes": 0.003}))
    # When it trains, Then checkpoints appear between the start and the final one
    assert run_worker(run) == EXIT_OK
    saved = [json.loads(line)["step"] for line in (run / "worker.log").read_text().splitlines()
             if '"event": "checkpoint_saved"' in line]
    assert len(saved) >= 2 and saved[-1] == 60 and all(0 < s < 60 for s in saved[:-1])
