"""farensectl validate: every bad input gets a message naming its key, line or file:line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from farensed.core.checks import check_job
from farensed.core.jobfile import parse_job
from farensed.core.paths import REPO_ROOT, Home

GOOD = f'''schema_version = 1
name = "t"
model = "{REPO_ROOT / 'models' / 'farense-tiny'}"
data = "{REPO_ROOT / 'data'}"

[training]
batch_size = 4
grad_accumulation = 2
learning_rate = 2e-4
'''


def _check(tmp_path: Path, text: str, name="job.toml", **kw):
    f = tmp_path / name
    f.write_text(text) if isinstance(text, str) else f.write_bytes(text)
    home = Home(tmp_path)
    return check_job(f, home, **kw)


def _messages(rep) -> list[str]:
    return [str(p) for p in rep.problems]


def test_the_guide_job_and_the_demo_job_parse_with_the_guides_values():
    from farensed.core.jobfile import load_job

    job = load_job(REPO_ROOT / "jobs" / "farense-mistral-7b.toml")
    t, lora, cad = job.training, job.lora, job.cadence
    assert (t.batch_size, t.grad_accumulation, t.learning_rate, t.epochs, t.max_seq_length, t.warmup_steps) == (
        4, 2, 2e-4, 3, 512, 100)
    assert (lora.rank, lora.scale, lora.dropout, len(lora.target_modules)) == (8, 16.0, 0.0, 7)
    assert (cad.checkpoint_every, cad.eval_every, cad.log_every) == (200, 200, 10)
    assert job.model == "models/mistral-7b-4bit" and t.schedule == "constant"
    assert check_job(REPO_ROOT / "jobs" / "demo.toml", Home(REPO_ROOT)).ok


def test_a_good_job_has_no_problem_and_describes_its_data(tmp_path):
    rep = _check(tmp_path, GOOD)
    assert rep.ok, _messages(rep)
    notes = "\n".join(rep.notes)
    assert "train: 190 examples (chat)" in notes and "leakage: none" in notes and "tokens min" in notes


def test_a_misspelt_key_is_named_with_its_line_and_the_likely_spelling(tmp_path):
    rep = _check(tmp_path, GOOD.replace("learning_rate = 2e-4", "learnig_rate = 2e-4"))
    assert _messages(rep) == [f"{tmp_path / 'job.toml'}:9: training.learnig_rate: unknown key"
                              " (did you mean learning_rate?)"]


@pytest.mark.parametrize("old,new,key,line", [
    ("batch_size = 4", "batch_size = 0", "training.batch_size", 7),
    ("grad_accumulation = 2", "grad_accumulation = 0", "training.grad_accumulation", 8),
    ("learning_rate = 2e-4", "learning_rate = -1e-4", "training.learning_rate", 9),
    ("learning_rate = 2e-4", "learning_rate = 0", "training.learning_rate", 9),
    ("batch_size = 4", 'batch_size = "four"', "training.batch_size", 7),
    ('name = "t"', "name = 3", "name", 2),
])
def test_out_of_range_and_wrong_types_name_key_and_line(tmp_path, old, new, key, line):
    [msg] = _messages(_check(tmp_path, GOOD.replace(old, new)))
    assert msg.startswith(f"{tmp_path / 'job.toml'}:{line}: {key}: ")


def test_rank_0_in_its_table_is_named(tmp_path):
    [msg] = _messages(_check(tmp_path, GOOD + "\n[lora]\nrank = 0\n"))
    assert ":12: lora.rank: Input should be greater than or equal to 1" in msg


def test_every_problem_is_reported_not_just_the_first(tmp_path):
    text = GOOD.replace("batch_size = 4", "batch_size = 0").replace("learning_rate = 2e-4", "learnig_rate = 1")
    assert len(_check(tmp_path, text).problems) == 2


def test_toml_syntax_errors_give_the_line(tmp_path):
    [msg] = _messages(_check(tmp_path, GOOD + "\n[cadence\n"))
    assert msg.startswith(f"{tmp_path / 'job.toml'}:11: not valid TOML")


def test_missing_model_and_data_are_named_unless_no_paths(tmp_path):
    text = GOOD.replace(str(REPO_ROOT / "models" / "farense-tiny"), "models/nothing-here").replace(
        str(REPO_ROOT / "data"), "nodata")
    (tmp_path / "models").mkdir()
    msgs = _messages(_check(tmp_path, text))
    assert any(":3: model: model folder not found" in m for m in msgs)
    assert any(":4: data: data not found" in m for m in msgs)
    assert _check(tmp_path, text, check_paths=False).ok


def test_bad_data_lines_are_named_file_and_line(tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    good = (REPO_ROOT / "data" / "train.jsonl").read_text().splitlines()[:10]
    (data / "train.jsonl").write_text("\n".join(good[:3] + ["{not json", '{"question": "x"}'] + good[3:]) + "\n")
    msgs = _messages(_check(tmp_path, GOOD.replace(str(REPO_ROOT / "data"), str(data))))
    assert any(f"{data / 'train.jsonl'}:4: not valid JSON" in m for m in msgs)
    assert any(f"{data / 'train.jsonl'}:5: not a known format" in m for m in msgs)


def test_fewer_examples_than_one_batch(tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    (data / "train.jsonl").write_text("\n".join((REPO_ROOT / "data" / "train.jsonl").read_text().splitlines()[:3]))
    [msg] = _messages(_check(tmp_path, GOOD.replace(str(REPO_ROOT / "data"), str(data))))
    assert "training.batch_size: only 3 training examples, fewer than one batch (4)" in msg


def test_trust_remote_code_is_refused_unless_allowed(tmp_path):
    text = GOOD.replace('name = "t"', 'name = "t"\ntrust_remote_code = true')
    [msg] = _messages(_check(tmp_path, text))
    assert ":3: trust_remote_code:" in msg
    assert _check(tmp_path, text, allow_remote_code=True).ok


def test_an_output_outside_the_checkpoints_root_is_refused(tmp_path):
    [msg] = _messages(_check(tmp_path, GOOD.replace('name = "t"', 'name = "t"\noutput = "../elsewhere"')))
    assert ":3: output:" in msg and "outside the checkpoints root" in msg
    assert _check(tmp_path, GOOD.replace('name = "t"', 'name = "t"\noutput = "checkpoints/mine"')).ok


def test_files_over_1_mib_or_not_utf8_are_refused(tmp_path):
    [big] = _messages(_check(tmp_path, GOOD + "#" * (1024 * 1024), name="big.toml"))
    assert "big.toml: file is" in big and "at most 1 MiB" in big
    [latin] = _messages(_check(tmp_path, (GOOD + '\n# S\xe3o Lu\xeds\n').encode("latin-1"), name="l.toml"))
    assert "l.toml:11: not UTF-8" in latin


def test_a_single_file_is_split_by_answer_without_leakage(tmp_path):
    both = (REPO_ROOT / "data" / "train.jsonl").read_text() + (REPO_ROOT / "data" / "valid.jsonl").read_text()
    (tmp_path / "all.jsonl").write_text(both)
    rep = _check(tmp_path, GOOD.replace(str(REPO_ROOT / "data"), str(tmp_path / "all.jsonl")))
    notes = "\n".join(rep.notes)
    assert rep.ok and "split 90%/10% by answer" in notes and "leakage: none" in notes


def test_parse_job_defaults_are_the_guides():
    job = parse_job('name = "x"\nmodel = "m"\ndata = "d"\n')
    assert job.training.effective_batch == 8 and job.cadence.checkpoint_every == 200


def test_the_cli_exits_non_zero_on_any_problem_and_prints_one_line_each(tmp_path):
    (tmp_path / "bad.toml").write_text(GOOD.replace("batch_size = 4", "batch_size = 0"))
    (tmp_path / "good.toml").write_text(GOOD)
    cmd = [sys.executable, "-m", "farensed.cli.main", "validate", "--home", str(tmp_path)]
    ok = subprocess.run(cmd + [str(tmp_path / "good.toml")], capture_output=True, text=True)
    bad = subprocess.run(cmd + [str(tmp_path / "good.toml"), str(tmp_path / "bad.toml")], capture_output=True,
                         text=True)
    assert ok.returncode == 0 and "good.toml: ok" in ok.stdout
    assert bad.returncode == 1 and bad.stderr.count("error: ") == 1 and "training.batch_size" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_a_distributed_job_needs_a_readable_hostfile_with_ips_and_rank_0_on_this_machine(tmp_path):
    # Given a hostfile over this machine and another one, and broken variants
    import json

    def hostfile(name, hosts):
        (tmp_path / name).write_text(json.dumps({"hosts": hosts}))
        return f'\n[distributed]\nhostfile = "{name}"\n'
    here, there = {"ssh": "127.0.0.1", "ips": ["127.0.0.1"]}, {"ssh": "mac-b.invalid", "ips": ["192.0.2.7"]}
    # Then a good one validates, with a note of its ranks
    rep = _check(tmp_path, GOOD + hostfile("ok.json", [here, there]), measure_tokens=False)
    assert rep.ok, _messages(rep)
    assert "distributed: 2 ranks, ring backend, on 127.0.0.1, mac-b.invalid" in rep.notes
    # And each broken one names the problem at the hostfile key's line
    cases = {"missing.json": "missing.json: cannot read the hostfile",
             "first-away.json": "rank 0 would run on mac-b.invalid, not on this machine",
             "no-ips.json": "the ring backend needs `ips` for every host"}
    hostfile("first-away.json", [there, here])
    hostfile("no-ips.json", [here, {"ssh": "mac-b.invalid"}])
    for name, expected in cases.items():
        text = GOOD + f'\n[distributed]\nhostfile = "{name}"\n'
        [msg] = _messages(_check(tmp_path, text, measure_tokens=False))
        assert msg.startswith(f"{tmp_path / 'job.toml'}:12: distributed.hostfile: ") and expected in msg, msg
