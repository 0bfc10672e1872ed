"""Answering questions with one loaded model, many at a time: mlx-lm's batch_generate decodes a
batch of prompts together (greedy unless a sampler is given); the LoRA weights are swapped per
target (the freshly initialized adapters, which change nothing, give the base model's answers).

Batched greedy answers are the same text as one-at-a-time ones (tests/e2e/test_answer_probe.py
checks it on the tiny model); bench/scoring/batched_answers.py measures the speed-up."""

from __future__ import annotations

import time
from pathlib import Path

import mlx.core as mx
from mlx_lm import batch_generate, generate
from mlx_lm.sample_utils import make_sampler

from farensed.core.formats import ADAPTERS, BEST_ADAPTERS, ScoredQuestion
from farensed.scoring.questions import Question, scored

ANSWER_BATCH = 32  # sequences decoded together: enough to fill the device, a small KV cache even at 7B


def target_weights(run_dir: Path, initial: dict[str, mx.array], targets) -> dict[str, dict[str, mx.array]]:
    """Adapter weights per target: base = `initial`, best = adapters/, final = the run folder's."""
    files = {"best": run_dir / BEST_ADAPTERS / ADAPTERS, "final": run_dir / ADAPTERS}
    return {t: initial if t == "base" else dict(mx.load(str(files[t]))) for t in targets}


def prompt_ids(tokenizer, messages: list[dict]) -> list[int]:
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=False)


def batched(model, tokenizer, prompts: list[list[int]], limits: list[int], sampler=None,
            batch: int = ANSWER_BATCH) -> list[str]:
    """Answers to token-id prompts, `batch` decoded together, returned in prompt order. Prompts
    of like length are put side by side, so a prefill pads little."""
    if not prompts:
        return []
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out = batch_generate(model, tokenizer, [prompts[i] for i in order], max_tokens=[limits[i] for i in order],
                         sampler=sampler, completion_batch_size=batch, prefill_batch_size=batch)
    texts = [""] * len(prompts)
    for i, text in zip(order, out.texts):
        texts[i] = text.strip()
    return texts


def one_at_a_time(model, tokenizer, prompts: list[list[int]], limits: list[int], sampler=None) -> list[str]:
    """The same answers, each prompt decoded alone (mlx-lm's generate): the reference the batched
    answers are tested and benchmarked against."""
    sampler = sampler or make_sampler(temp=0.0)
    return [generate(model, tokenizer, prompt=p, max_tokens=n, sampler=sampler, verbose=False).strip()
            for p, n in zip(prompts, limits)]


class Answerer:
    """Greedy answers of one model under each target's adapter weights, a batch at a time."""

    def __init__(self, model, tokenizer, weights: dict[str, dict[str, mx.array]], max_tokens: int = 0,
                 prompt_max_tokens: int = 100, batch: int = ANSWER_BATCH):
        self.model, self.tokenizer, self.weights = model, tokenizer, weights
        self.max_tokens, self.prompt_max_tokens, self.batch = max_tokens, prompt_max_tokens, batch
        self.current: str | None = None
        model.eval()

    @property
    def targets(self) -> list[str]:
        return list(self.weights)

    def _use(self, target: str) -> None:
        if target != self.current:
            self.model.load_weights(list(self.weights[target].items()), strict=False)
            self.current = target

    def limit(self, q: Question) -> int:
        """Tokens allowed: the setting, else twice the reference's length plus 16."""
        if q.reference is None:
            return self.prompt_max_tokens
        if self.max_tokens:
            return self.max_tokens
        return 2 * self.tokens(q.reference) + 16

    def tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def replies(self, target: str, questions: list[Question]) -> list[str]:
        """`target`'s greedy answers to `questions`, decoded together."""
        self._use(target)
        prompts = [prompt_ids(self.tokenizer, q.messages) for q in questions]
        return batched(self.model, self.tokenizer, prompts, [self.limit(q) for q in questions], batch=self.batch)

    def score(self, questions: list[Question]) -> list[ScoredQuestion]:
        """Every target's answers to `questions`, scored against their references; each row's
        `seconds` is its share of the batch's time."""
        t0 = time.monotonic()
        texts = {t: self.replies(t, questions) for t in self.targets}
        each = (time.monotonic() - t0) / max(len(questions), 1)
        return [scored(q, {t: texts[t][i] for t in self.targets}, each) for i, q in enumerate(questions)]
