"""A new user's job-file mistakes get a way out (issue 23 item 9): mlx-lm's key names are mapped to
farensed's, a data file given as a job says what it is, and one dropped into the spool is rejected
with its reason and its bytes kept, not left there unseen."""

from __future__ import annotations

import json
import subprocess

from conftest import PY, REPO, ctl, record

MLX_LM_JOB = """name = "x"
model = "models/farense-tiny"
data = "data"
iters = 100
batch_size = 2
[training]
save_every = 10
num_layers = 4
[lora]
fine_tune_type = "lora"
learning_rate = 1e-3
[cadence]
steps_per_eval = 5
"""


def test_mlx_lm_key_names_say_what_they_are_in_farensed(home):
    (home / "mlx.toml").write_text(MLX_LM_JOB)
    err = ctl("validate", str(home / "mlx.toml"), check=False).stderr
    where = "unknown key {1}: in farensed this is {2}"
    for line, key, there in ((4, "iters", "[training] max_steps"), (5, "batch_size", "[training] batch_size"),
                             (7, "training.save_every", "[cadence] checkpoint_every"),
                             (8, "training.num_layers", "[lora] num_layers"),
                             (10, "lora.fine_tune_type", "[lora] type"),
                             (11, "lora.learning_rate", "[training] learning_rate"),
                             (13, "cadence.steps_per_eval", "[cadence] eval_every")):
        line = f"mlx.toml:{line}: {key}: " + where.format(None, key.split(".")[-1], there)
        assert line in err, line


def test_a_data_file_given_as_a_job_says_it_is_data(home):
    data = home / "data" / "train.jsonl"
    for verb in ("validate", "submit"):
        cp = ctl(verb, str(data), check=False)
        assert cp.returncode == 1 and "not valid TOML" not in cp.stderr
        assert "a data file (JSON lines), not a job file" in cp.stderr and f'data = "{data.resolve()}"' in cp.stderr
    assert not (home / "spool").exists() or not list((home / "spool").glob("*"))


def test_data_dropped_into_the_spool_is_rejected_with_its_bytes_and_logged(home):
    spool = home / "spool"
    spool.mkdir()
    raw = (home / "data" / "valid.jsonl").read_bytes()
    (spool / "valid.jsonl").write_bytes(raw)
    cp = subprocess.run([PY, "-m", "farensed.daemon.main", "run", "--once", "--settle-seconds", "0.5"], cwd=REPO,
                        capture_output=True, text=True, timeout=120)
    assert cp.returncode == 0, cp.stderr
    assert not (spool / "valid.jsonl").exists()
    rec = record(home, "valid")
    assert rec["state"] == "rejected" and rec["file_name"] == "valid.jsonl" and "a data file" in rec["reason"]
    assert (spool / "rejected" / "valid.toml").read_bytes() == raw
    assert "not a job file" in (spool / "rejected" / "valid.toml.error.txt").read_text()
    events = [json.loads(x)["event"] for x in (home / "logs" / "farensed.jsonl").read_text().splitlines()]
    assert "spool_data_file_rejected" in events
    assert "valid" in ctl("status").stdout
