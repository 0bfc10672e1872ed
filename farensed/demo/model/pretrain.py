"""Pre-training of the tiny demo model: a few dozen full-parameter steps on the sample data's
plain texts (answers and questions, each followed by eos), so LoRA then has a real, if very
small, language model to adapt. Deterministic for a given BLAS."""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SEED = 1910
LOG2_E = 1 / math.log(2)

# 50 steps of 16 x 64 tokens: ~6s on 2 cores with OpenBLAS preloaded (farensed/blas.py),
# ~36s with mlx-cpu's reference BLAS.  Tuned at this step count: a 5-10 step warm-up, a
# rate of 6e-3, a wider (256) or deeper (4) model in the same time all ended clearly worse.
# The bytes built depend on the BLAS (its rounding), not on its thread count.
PRETRAIN = {
    "steps": 50,
    "batch_size": 16,
    "seq_len": 64,
    "learning_rate": 3e-3,
    "warmup_steps": 20,
    "weight_decay": 0.01,
    # The answers hold the facts but are only ~1/6 of the text (one answer per fact, 6-10
    # questions): each pass over the corpus takes every answer this many times.
    "answer_repeats": 6,
}
# After pre-training, the inputs of every layer LoRA adapts (q/k/v/o, gate/up/down) are made
# this many times smaller and those layers' weights as many times larger (see
# scale_lora_inputs): the same function, bit for bit, but LoRA's updates move it much less
# per step.  Without it, LoRA at the demo job's rate (2e-3, set for the old random model)
# wrecks the pre-trained model within 25 steps (val loss 3.0 -> 4.7, answers "O o o o"), and
# at the tests' 5e-3 runs that split a batch differently end 20% apart instead of 0.1%
# (tests/test_worker_oom.py allows 0.5%; a divisor of 4 still gave 1.6-2.8%).
LORA_INPUT_DIVISOR = 16  # a power of two, so the rescaling is exact


def pretrain_texts(data_dir: Path) -> tuple[list[str], list[str]]:
    """The pre-training corpus: each distinct answer and each distinct question of both files,
    in file order.  Plain texts, no system prompt and no chat template: the chat format is
    left for LoRA."""
    answers, questions = [], []
    for name in ("train.jsonl", "valid.jsonl"):
        with open(data_dir / name, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    for m in json.loads(line)["messages"]:
                        if m["role"] == "assistant":
                            answers.append(m["content"])
                        elif m["role"] == "user":
                            questions.append(m["content"])
    return list(dict.fromkeys(answers)), list(dict.fromkeys(questions))


def scale_lora_inputs(model, divisor: float) -> None:
    """Divide the input of each LoRA target layer by `divisor`, multiplying its weight by it.

    Per block: the norm before attention and the MLP shrinks (so q/k/v and gate/up see smaller
    inputs) while q, k and gate grow (their outputs, hence the attention scores and the gate,
    are unchanged); v and up keep their weights, so their smaller outputs become the smaller
    inputs of o and down, which grow.
    """
    for layer in model.model.layers:
        attn, mlp = layer.self_attn, layer.mlp
        for norm in (layer.input_layernorm, layer.post_attention_layernorm):
            norm.weight = norm.weight / divisor
        for proj in (attn.q_proj, attn.k_proj, attn.o_proj, mlp.gate_proj, mlp.down_proj):
            proj.weight = proj.weight * divisor


@dataclass(frozen=True)
class Pretraining:
    """What build()'s pre-training did; losses are mean next-token losses over the corpus
    (each answer and question once, packed in file order)."""

    steps: int
    tokens: int
    loss_before: float
    loss_after: float
    seconds: float

    def __str__(self) -> str:
        return (f"pre-trained {self.steps} steps on {self.tokens:,} tokens, "
                f"loss {self.loss_before:.2f} -> {self.loss_after:.2f} in {self.seconds:.1f}s")


def _rows(docs: list[list[int]], length: int) -> list[list[int]]:
    """The documents back to back, cut into rows of `length` tokens (a short tail is dropped)."""
    stream = [t for doc in docs for t in doc]
    return [stream[i:i + length] for i in range(0, len(stream) - length + 1, length)]


def pretrain_batches(docs: list[list[int]], batch_size: int, seq_len: int) -> Iterator[list[list[int]]]:
    """Endless batches of packed rows (seq_len inputs + 1 target); each pass reshuffles the
    documents with a seeded generator, so the order is the same on every build."""
    rng = random.Random(SEED)
    while True:
        order = list(docs)
        rng.shuffle(order)
        rows = _rows(order, seq_len + 1)
        for i in range(0, len(rows) - batch_size + 1, batch_size):
            yield rows[i:i + batch_size]


def _cross_entropy(logits, targets):
    """nn.losses.cross_entropy, with exp(x) written as 2**(x*log2(e)): on mlx-cpu the power
    kernel is about 4x faster than exp, which made the softmax over the vocabulary the
    costliest part of a pre-training step."""
    import mlx.core as mx

    top = mx.stop_gradient(logits.max(axis=-1, keepdims=True))
    lse = mx.log(mx.power(2.0, (logits - top) * LOG2_E).sum(axis=-1, keepdims=True)) + top
    return (lse - mx.take_along_axis(logits, targets[..., None], axis=-1)).squeeze(-1)


def _next_token_loss(model, batch):
    """Mean cross-entropy of each next token; `batch` is (rows, seq_len + 1) token ids."""
    return _cross_entropy(model(batch[:, :-1]), batch[:, 1:]).mean()


def corpus_loss(model, docs: list[list[int]], batch_size: int, seq_len: int) -> float:
    """The mean next-token loss over the corpus packed in file order."""
    import mlx.core as mx

    rows = _rows(docs, seq_len + 1)
    total = 0.0
    for i in range(0, len(rows), batch_size):
        chunk = rows[i:i + batch_size]
        total += _next_token_loss(model, mx.array(chunk)).item() * len(chunk)
    return total / len(rows)


def pretrain(model, answers: list[list[int]], questions: list[list[int]], steps: int, batch_size: int,
             seq_len: int, learning_rate: float, warmup_steps: int, weight_decay: float,
             answer_repeats: int) -> Pretraining:
    """Train every weight of `model` with AdamW on next-token loss over the token documents
    (each ending in eos); deterministic given the seed and the documents."""
    import mlx.core as mx
    import mlx.nn as nn
    import mlx.optimizers as optim

    start = time.monotonic()
    corpus = answers + questions
    before = corpus_loss(model, corpus, batch_size, seq_len)
    schedule = optim.join_schedules(
        [optim.linear_schedule(learning_rate / warmup_steps, learning_rate, warmup_steps),
         optim.cosine_decay(learning_rate, steps - warmup_steps, learning_rate / 20)],
        [warmup_steps],
    )
    opt = optim.AdamW(learning_rate=schedule, weight_decay=weight_decay)
    loss_and_grad = nn.value_and_grad(model, _next_token_loss)
    model.train()
    batches = pretrain_batches(answers * answer_repeats + questions, batch_size, seq_len)
    for _ in range(steps):
        loss, grads = loss_and_grad(model, mx.array(next(batches)))
        opt.update(model, grads)
        mx.eval(loss, model.parameters(), opt.state)
    model.eval()
    after = corpus_loss(model, corpus, batch_size, seq_len)
    return Pretraining(steps, steps * batch_size * seq_len, before, after, time.monotonic() - start)
