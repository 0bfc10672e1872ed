"""The demo dataset and the tiny demo model: deterministic, loadable, trainable by mlx-lm."""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest

from farensed.paths import REPO_ROOT
from farensed.worker import demo_model

DATA = REPO_ROOT / "data"


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _answers(name: str) -> set[str]:
    with open(DATA / name, encoding="utf-8") as f:
        return {json.loads(line)["messages"][-1]["content"] for line in f if line.strip()}


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """Two independent builds (float and 4-bit) of the demo model from the sample data."""
    roots = []
    for name in ("first", "second"):
        root = tmp_path_factory.mktemp(name)
        demo_model.build(root / "tiny", DATA)
        demo_model.build_quantized(root / "tiny", root / "tiny-4bit")
        roots.append(root)
    return roots


def test_building_twice_gives_byte_identical_files(builds):
    # Given two builds from the same data
    first, second = builds
    # When every file of each is read
    a, b = _files(first), _files(second)
    # Then both hold the same files with the same bytes, and no staging folder is left
    assert set(a) == set(b)
    assert "tiny/model.safetensors" in a and "tiny-4bit/model.safetensors" in a
    assert all(a[name] == b[name] for name in a), [n for n in a if a[n] != b[n]]
    assert sorted(p.name for p in first.iterdir()) == ["tiny", "tiny-4bit"]


def test_built_model_loads_and_generates(builds):
    from mlx_lm import generate, load

    # Given the float model
    model, tokenizer = load(str(builds[0] / "tiny"))
    messages = [{"role": "user", "content": "Quando foi fundado o Farense?"}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    # When it generates a few tokens
    text = generate(model, tokenizer, prompt=prompt, max_tokens=5)
    # Then it answers with a string and has the llama LoRA targets
    assert isinstance(text, str)
    attn, mlp = model.model.layers[0].self_attn, model.model.layers[0].mlp
    for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
        assert hasattr(attn, name)
    for name in ("gate_proj", "up_proj", "down_proj"):
        assert hasattr(mlp, name)
    assert tokenizer.eos_token == "<|im_end|>"


def test_quantized_variant_loads_with_4bit_layers(builds):
    import mlx.nn as nn
    from mlx_lm import generate, load

    # Given the 4-bit variant
    model, tokenizer = load(str(builds[0] / "tiny-4bit"))
    # When its layers are inspected and it generates
    q_proj = model.model.layers[0].self_attn.q_proj
    text = generate(model, tokenizer, prompt="Farense", max_tokens=5)
    # Then q_proj is a 4-bit, group-64 QuantizedLinear and generation works
    assert isinstance(q_proj, nn.QuantizedLinear)
    assert (q_proj.bits, q_proj.group_size) == (4, 64)
    assert isinstance(text, str)


def test_generation_prompt_is_a_token_prefix_of_the_chat(builds):
    from mlx_lm import load

    # Given the tokenizer and every sample conversation
    _, tokenizer = load(str(builds[0] / "tiny"))
    chats = []
    for name in ("train.jsonl", "valid.jsonl"):
        with open(DATA / name, encoding="utf-8") as f:
            chats += [json.loads(line)["messages"] for line in f]
    # When the prompt with the generation header and the full chat are tokenized
    for messages in chats:
        full = tokenizer.apply_chat_template(messages, return_dict=False)
        prompt = tokenizer.apply_chat_template(messages[:-1], add_generation_prompt=True, return_dict=False)
        # Then the prompt's tokens start the full chat (mask_prompt relies on it)
        assert full[: len(prompt)] == prompt
        assert len(full) > len(prompt)


def test_sample_data_loads_with_mlx_lm_dataset_loader(builds):
    from mlx_lm import load
    from mlx_lm.tuner.datasets import load_dataset

    # Given the sample folder and mlx-lm's own loader settings
    _, tokenizer = load(str(builds[0] / "tiny"))
    args = types.SimpleNamespace(data=str(DATA), train=True, test=False, mask_prompt=True, hf_dataset=False)
    # When mlx-lm loads it
    train, valid, test = load_dataset(args, tokenizer)
    # Then the counts match the files and each example masks its prompt
    assert (len(train), len(valid), len(test)) == (190, 34, 0)
    tokens, offset = train.process(train[0])
    assert 0 < offset < len(tokens)


def test_no_answer_is_in_both_train_and_valid():
    # Given the two sample files
    train, valid = _answers("train.jsonl"), _answers("valid.jsonl")
    # When their assistant answers are compared
    shared = train & valid
    # Then none is shared, and both sides hold several facts
    assert not shared
    assert len(train) >= 20 and len(valid) >= 3


def test_generator_rewrites_the_same_files(tmp_path):
    import runpy

    # Given the generator script
    make_sample = runpy.run_path(str(DATA / "make_sample.py"))
    # When it writes into a fresh folder
    make_sample["main"](tmp_path)
    # Then the output equals the committed sample files
    for name in ("train.jsonl", "valid.jsonl"):
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes()
