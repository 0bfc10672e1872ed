"""[sweep] and [init] in a job file: every bad one gets one clear problem naming the key, before
anything runs; a trial's job file is the sweep's job with its values, and reads back the same."""

from __future__ import annotations

import tomllib

import pytest

from conftest import small_job
from farensed.core import tomlwrite
from farensed.core.checks import check_job
from farensed.core.experiment_spec import MAX_TRIALS
from farensed.core.jobfile import parse_job
from farensed.core.paths import Home
from farensed.core.sweep_params import sweepable, trial_count, with_values

BAD_SWEEPS = {
    '"training.warmup_step" = [1, 2]': ("sweep.params.training.warmup_step", "did you mean training.warmup_steps?"),
    '"model" = ["a", "b"]': ("sweep.params.model", "it cannot be swept"),
    '"lora.rank" = []': ("sweep.params", "lora.rank: an empty list of values"),
    '"training.learning_rate" = {min = 1e-2, max = 1e-4}': ("sweep.params", "min 0.01 is larger than max 0.0001"),
    '"lora.rank" = [0, 8]': ("sweep.params.lora.rank", "value 0"),
    '"training.learning_rate" = {min = 0.0, max = 1e-3, log = true}': ("sweep.params", "a log range needs min > 0"),
    '"training.schedule" = {min = 1, max = 2}': ("sweep.params.training.schedule", "is a choice"),
}


def _problems(home, tmp_path, text: str) -> list[str]:
    path = tmp_path / "job.toml"
    path.write_text(text)
    rep = check_job(path, Home(home), measure_tokens=False)
    return [str(p) for p in rep.problems]


@pytest.mark.parametrize("param", list(BAD_SWEEPS))
def test_a_bad_sweep_parameter_is_one_problem_naming_its_key(home, tmp_path, param):
    key, said = BAD_SWEEPS[param]
    found = _problems(home, tmp_path, small_job(4) + f"[sweep]\nmethod = \"random\"\n[sweep.params]\n{param}\n")
    assert len(found) == 1 and f": {key}: " in found[0] and said in found[0], found


def test_grid_needs_lists_trials_have_a_cap_and_answers_needs_the_probe(home, tmp_path):
    grid = small_job(4) + ('[sweep]\nmethod = "grid"\n[sweep.params]\n'
                           '"training.learning_rate" = {min = 1e-4, max = 1e-3}\n')
    assert any("grid needs a list" in p for p in _problems(home, tmp_path, grid))
    many = small_job(4) + f'[sweep]\ntrials = {MAX_TRIALS + 1}\n[sweep.params]\n"lora.rank" = [4, 8]\n'
    assert any("sweep.trials" in p and f"less than or equal to {MAX_TRIALS}" in p
               for p in _problems(home, tmp_path, many))
    no_probe = small_job(4, evaluate={"probe": 0}) + '[sweep]\n[sweep.params]\n"lora.rank" = [4, 8]\n'
    assert any("sweep.metric" in p and "needs the probe" in p for p in _problems(home, tmp_path, no_probe))
    with_output = small_job(4, top={"output": "checkpoints/x"}) + '[sweep]\n[sweep.params]\n"lora.rank" = [4, 8]\n'
    assert any(": output: " in p and "own folder" in p for p in _problems(home, tmp_path, with_output))


def test_a_good_sweep_passes_and_dotted_tables_read_as_dotted_keys(home, tmp_path):
    text = small_job(4) + ('[sweep]\nmethod = "grid"\n[sweep.params]\ntraining.learning_rate = [1e-4, 1e-3]\n'
                           'lora.rank = [4, 8, 16]\n')
    assert _problems(home, tmp_path, text) == []
    spec = parse_job(text)
    assert list(spec.sweep.params) == ["training.learning_rate", "lora.rank"] and trial_count(spec.sweep) == 6


def test_init_needs_one_source_and_a_known_adapters_choice(home, tmp_path):
    both = small_job(4) + '[init]\njob = "a"\npath = "b"\n'
    assert any("one of the two" in p for p in _problems(home, tmp_path, both))
    odd = small_job(4) + '[init]\njob = "a"\nadapters = "newest"\n'
    assert any("init.adapters" in p and "step:S" in p for p in _problems(home, tmp_path, odd))
    missing = small_job(4) + '[init]\njob = "gone"\n'
    assert any(": init.job: " in p and "no job 'gone'" in p for p in _problems(home, tmp_path, missing))


def test_a_trials_job_file_is_the_sweeps_job_with_its_values(home):
    raw = tomllib.loads(small_job(4) + '[sweep]\n[sweep.params]\n"lora.rank" = [4, 8]\n')
    trial = with_values(raw, {"lora.rank": 16, "training.learning_rate": 1e-5, "mask_prompt": False})
    text = tomlwrite.dumps(trial, "trial 1 of sweep s")
    spec = parse_job(text)
    assert spec.sweep is None and spec.lora.rank == 16 and spec.training.learning_rate == 1e-5
    assert spec.mask_prompt is False and spec.training.max_steps == 4 and text.startswith("# trial 1 of sweep s")
    assert tomllib.loads(text) == trial
    assert {"training.learning_rate", "lora.rank", "lora.num_layers", "training.schedule"} <= set(sweepable())
    assert not {"model", "data", "output", "name"} & set(sweepable())


def _adapters(path, layers: int = 2, rank: int = 8, modules=("q_proj", "v_proj"), width: int = 128) -> None:
    """A safetensors file of LoRA tensors (zeros) with mlx-lm's names, written by hand."""
    import json
    import struct

    header, offset = {}, 0
    for n in range(layers):
        for m in modules:
            for part, shape in (("lora_a", [width, rank]), ("lora_b", [rank, width])):
                size = 4 * shape[0] * shape[1]
                header[f"model.layers.{n}.self_attn.{m}.{part}"] = {"dtype": "F32", "shape": shape,
                                                                    "data_offsets": [offset, offset + size]}
                offset += size
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(offset))


def test_adapters_that_do_not_fit_the_model_or_lora_are_named_by_key(home, tmp_path):
    from farensed.core import lineage

    def problems(lora: str, **kw) -> list[str]:
        folder = tmp_path / f"a{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        _adapters(folder / "adapters.safetensors", **kw)
        spec = parse_job(small_job(4) + f'[lora]\nnum_layers = -1\n{lora}\n[init]\npath = "{folder}"\n')
        return [f"{k}: {m}" for k, m in lineage.problems(spec, Home(home))]

    fits = 'target_modules = ["q_proj", "v_proj"]\nrank = 8'
    assert problems(fits) == []
    assert any(p.startswith("lora.rank: ") for p in problems(fits, rank=4))
    assert any(p.startswith("lora.target_modules: ") for p in problems(fits, modules=("q_proj", "k_proj")))
    assert any(p.startswith("model: ") and "another model" in p for p in problems(fits, layers=3))
    assert any(p.startswith("model: ") and "another model" in p for p in problems(fits, width=96))
    assert any(p.startswith("lora.num_layers: ") for p in problems(fits, layers=1))
