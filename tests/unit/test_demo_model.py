"""The demo dataset and the tiny demo model: deterministic, loadable, trainable by mlx-lm."""

from __future__ import annotations

import dataclasses
import json
import types
from pathlib import Path

import pytest

from farensed.core.paths import REPO_ROOT
from farensed.demo.model import build, pretrain

DATA = REPO_ROOT / "data"


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _answers(name: str) -> set[str]:
    with open(DATA / name, encoding="utf-8") as f:
        return {json.loads(line)["messages"][-1]["content"] for line in f if line.strip()}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Two independent builds (float and 4-bit) of the demo model from the sample data,
    with the float builds' pre-training reports."""
    roots, reports = [], []
    for name in ("first", "second"):
        root = tmp_path_factory.mktemp(name)
        reports.append(build.build(root / "tiny", DATA))
        build.build_quantized(root / "tiny", root / "tiny-4bit")
        roots.append(root)
    return roots, reports


@pytest.fixture(scope="module")
def builds(built):
    return built[0]


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


def test_pretraining_lowers_the_loss_the_same_way_each_build(built):
    # Given the pre-training reports of both builds
    _, (first, second) = built
    # When they are compared with each other and with the settings
    settings = pretrain.PRETRAIN
    # Then both ran the configured steps with equal losses, from about ln(vocab) to well below
    assert dataclasses.replace(second, seconds=first.seconds) == first
    assert first.steps == settings["steps"]
    assert first.tokens == settings["steps"] * settings["batch_size"] * settings["seq_len"]
    assert first.loss_before > 6.5 and first.loss_after < 1.5
    assert f"loss {first.loss_before:.2f} -> {first.loss_after:.2f}" in str(first)


def test_pretrained_model_completes_answers_from_the_data(builds):
    from mlx_lm import generate, load

    # Given the float model and every distinct answer of the sample
    model, tokenizer = load(str(builds[0] / "tiny"))
    answers, _ = pretrain.pretrain_texts(DATA)
    # When it continues each answer's first three words (plain text, no chat template)
    completed = 0
    for answer in answers:
        start = " ".join(answer.split()[:3])
        completed += f"{start} {generate(model, tokenizer, prompt=start, max_tokens=40)}" in answers
    # Then it writes out a good share of them word for word (a random model writes none)
    assert completed >= len(answers) // 4, completed


def test_pretraining_corpus_is_plain_answers_and_questions():
    # Given the sample files
    chats = []
    for name in ("train.jsonl", "valid.jsonl"):
        with open(DATA / name, encoding="utf-8") as f:
            chats += [json.loads(line)["messages"] for line in f if line.strip()]
    # When the pre-training texts are taken from them
    answers, questions = pretrain.pretrain_texts(DATA)
    # Then they are the distinct answers of both files and the distinct questions, with no
    # system prompt and no chat markup
    assert set(answers) == _answers("train.jsonl") | _answers("valid.jsonl")
    assert len(answers) == len(set(answers)) and len(questions) == len(set(questions))
    assert set(questions) == {m[1]["content"] for m in chats}
    assert not {m[0]["content"] for m in chats} & set(answers + questions)
    assert not any("<|im_" in t for t in answers + questions)


def test_pretraining_batches_are_packed_rows_in_a_fixed_order():
    # Given a few token documents
    docs = [[i] * (i + 1) for i in range(1, 12)]
    # When two batch streams are drawn
    a, b = pretrain.pretrain_batches(docs, 2, 7), pretrain.pretrain_batches(docs, 2, 7)
    first = [next(a) for _ in range(8)]
    # Then both give the same batches of 2 rows of 8 tokens, cut from the shuffled documents
    assert first == [next(b) for _ in range(8)]
    assert all(len(batch) == 2 and all(len(row) == 8 for row in batch) for batch in first)
    assert first[0] != first[4] or first[1] != first[5]  # passes are reshuffled


def test_scaling_lora_inputs_keeps_the_function_bit_for_bit():
    import mlx.core as mx

    # Given a seeded model of the demo architecture and its logits on a few tokens
    config = dict(build.ARCH, vocab_size=300, eos_token_id=2)
    model = build.random_model(config)
    tokens = mx.array([[5, 17, 250, 3, 99, 42]])
    before = model(tokens)
    norm, down = model.model.layers[0].input_layernorm.weight, model.model.layers[1].mlp.down_proj.weight
    # When the LoRA targets' inputs are scaled down by 4
    pretrain.scale_lora_inputs(model, 4)
    # Then the weights moved and the logits are exactly the same
    assert mx.array_equal(model.model.layers[0].input_layernorm.weight, norm / 4).item()
    assert mx.array_equal(model.model.layers[1].mlp.down_proj.weight, down * 4).item()
    assert mx.array_equal(model(tokens), before).item()


def test_fast_cross_entropy_matches_mlx():
    import mlx.core as mx
    import mlx.nn as nn

    # Given random logits and targets
    mx.random.seed(0)
    logits, targets = mx.random.normal((3, 5, 50)) * 4, mx.random.randint(0, 50, (3, 5))
    # When the loss and its gradient come from the power-based version and from mlx
    ours = pretrain._cross_entropy(logits, targets)
    ref = nn.losses.cross_entropy(logits, targets)
    g_ours = mx.grad(lambda x: pretrain._cross_entropy(x, targets).mean())(logits)
    g_ref = mx.grad(lambda x: nn.losses.cross_entropy(x, targets).mean())(logits)
    # Then they agree to float precision
    assert mx.allclose(ours, ref, atol=1e-5).item()
    assert mx.allclose(g_ours, g_ref, atol=1e-6).item()


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
    # Then the counts match the files (test.jsonl: the held-out questions) and each example masks its prompt
    assert (len(train), len(valid), len(test)) == (190, 34, 52)
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


def test_held_out_questions_ask_about_training_facts_in_new_words():
    # Given the three sample files
    def chats(name):
        with open(DATA / name, encoding="utf-8") as f:
            return [json.loads(line)["messages"] for line in f if line.strip()]
    trained = {m[1]["content"] for m in chats("train.jsonl") + chats("valid.jsonl")}
    held = chats("test.jsonl")
    # Then every held-out question is new, with the answer of a training fact, two per fact
    assert len(held) == 52 and not {m[1]["content"] for m in held} & trained
    assert {m[2]["content"] for m in held} == _answers("train.jsonl")
    pretraining_questions = set(pretrain.pretrain_texts(DATA)[1])
    assert not {m[1]["content"] for m in held} & pretraining_questions


def test_generator_rewrites_the_same_files(tmp_path):
    import runpy

    # Given the generator script
    make_sample = runpy.run_path(str(DATA / "make_sample.py"))
    # When it writes into a fresh folder
    make_sample["main"](tmp_path)
    # Then the output equals the committed sample files
    for name in ("train.jsonl", "valid.jsonl", "test.jsonl"):
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes()
