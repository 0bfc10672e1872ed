"""ask, compare, export and watch against real finished runs of the tiny model (worker run for real)."""

from __future__ import annotations

import pytest

from conftest import ctl, small_job
from farensed.core.exitcodes import EXIT_OK
from farensed.core.paths import REPO_ROOT
from worker_support import make_run, run_worker

PROMPT = "Quando foi fundado o Sporting Clube Farense?"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two finished runs that differ in learning rate and rank, both with a generate prompt."""
    home = tmp_path_factory.mktemp("home")
    for name in ("models", "data"):
        (home / name).symlink_to(REPO_ROOT / name)
    a = make_run(home / "checkpoints", "run-a", small_job(8, generate={"prompts": [PROMPT]}))
    b = make_run(home / "checkpoints", "run-b", small_job(8, training={"learning_rate": 1e-3}, lora={"rank": 4},
                                                          generate={"prompts": [PROMPT], "temperature": 0.8}))
    assert run_worker(a) == EXIT_OK and run_worker(b) == EXIT_OK
    return home, a, b


def test_ask_streams_an_answer_from_the_best_adapters(runs):
    home, a, _ = runs
    # When (a job id resolves to checkpoints/<id> under --home)
    cp = ctl("ask", "run-a", "Olá", "--temp", "0.8", "--max-tokens", "12", "--home", str(home))
    # Then the answer is on stdout and the choice on stderr
    assert cp.stdout.strip() and "best adapters" in cp.stderr


def test_ask_checkpoint_by_step_and_the_base_model(runs):
    home, a, _ = runs
    ck = ctl("ask", "run-a", "Olá", "--checkpoint", "4", "--temp", "0.8", "--max-tokens", "12", "--home", str(home))
    base = ctl("ask", "run-a", "Olá", "--base", "--temp", "0.8", "--max-tokens", "12", "--home", str(home))
    assert "checkpoint_epoch0_step4 adapters" in ck.stderr and ck.stdout.strip()
    assert "base on" in base.stderr and base.stdout.strip() and base.stdout != ck.stdout


def test_ask_unknown_checkpoint_is_one_clean_error(runs):
    home, a, _ = runs
    cp = ctl("ask", str(a), "Olá", "--checkpoint", "99", "--home", str(home), check=False)
    assert cp.returncode == 1 and "no checkpoint '99'" in cp.stderr and "Traceback" not in cp.stderr


def test_compare_shows_figures_differing_settings_and_stored_answers(runs):
    home, a, b = runs
    out = ctl("compare", "run-a", "run-b", "--home", str(home)).stdout
    for text in ("best val loss", "final val loss", "tokens/s", "time", "lora.rank", "training.learning_rate",
                 "generate.temperature", PROMPT[:20]):
        assert text in out, text
    assert "training.seed" not in out  # equal settings are not listed


def test_compare_with_a_prompt_asks_every_model(runs):
    home, a, b = runs
    out = ctl("compare", str(a), str(b), "--prompt", "Olá", "--temp", "0.8", "--max-tokens", "6",
              "--home", str(home)).stdout
    assert "answers" in out and "Olá" in out


def test_export_fuses_a_model_mlx_lm_loads_and_generates_with(runs, tmp_path):
    home, a, _ = runs
    out = ctl("export", "run-a", "--out", str(tmp_path / "fused"), "--home", str(home)).stdout
    assert "best adapters as a fused MLX model" in out and "parity: fused MLX model answers" in out
    from mlx_lm import generate, load

    model, tok = load(str(tmp_path / "fused"))
    assert isinstance(generate(model, tok, prompt="Olá", max_tokens=4), str)
    again = ctl("export", "run-a", "--out", str(tmp_path / "fused"), "--home", str(home), check=False)
    assert again.returncode == 1 and "not empty" in again.stderr


def test_watch_once_on_a_finished_run_says_it_ended(runs):
    home, a, _ = runs
    out = ctl("watch", str(a), "--once", "--home", str(home)).stdout
    assert "job ended: done" in out and "step 8/8" in out and "100.0%" in out


def test_export_dequantize_from_a_4bit_base_writes_full_precision(tmp_path):
    import json

    # Given a run trained on the 4-bit tiny model
    run = make_run(tmp_path, "q", small_job(4, top={"model": REPO_ROOT / "models" / "farense-tiny-4bit"}))
    assert run_worker(run) == EXIT_OK
    # When
    ctl("export", str(run), "--dequantize")
    # Then the fused model has no quantization and mlx-lm generates with it
    assert "quantization" not in json.loads((run / "fused" / "config.json").read_text())
    from mlx_lm import generate, load

    model, tok = load(str(run / "fused"))
    assert isinstance(generate(model, tok, prompt="Olá", max_tokens=4), str)
