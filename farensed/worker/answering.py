"""Answering scored questions with one loaded model: its LoRA weights are swapped per target
(the freshly initialized adapters, which change nothing, give the base model's answers)."""

from __future__ import annotations

import time
from pathlib import Path

import mlx.core as mx
from mlx_lm import generate
from mlx_lm.sample_utils import make_sampler

from farensed.core.formats import ADAPTERS, BEST_ADAPTERS, ScoredQuestion
from farensed.scoring.questions import Question, scored


def target_weights(run_dir: Path, initial: dict[str, mx.array], targets) -> dict[str, dict[str, mx.array]]:
    """Adapter weights per target: base = `initial`, best = adapters/, final = the run folder's."""
    files = {"best": run_dir / BEST_ADAPTERS / ADAPTERS, "final": run_dir / ADAPTERS}
    return {t: initial if t == "base" else dict(mx.load(str(files[t]))) for t in targets}


class Answerer:
    """Greedy answers of one model under each target's adapter weights."""

    def __init__(self, model, tokenizer, weights: dict[str, dict[str, mx.array]], max_tokens: int = 0,
                 prompt_max_tokens: int = 100):
        self.model, self.tokenizer, self.weights = model, tokenizer, weights
        self.max_tokens, self.prompt_max_tokens = max_tokens, prompt_max_tokens
        self.current: str | None = None
        self.sampler = make_sampler(temp=0.0)
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

    def reply(self, target: str, q: Question) -> str:
        self._use(target)
        ids = self.tokenizer.apply_chat_template(q.messages, add_generation_prompt=True, return_dict=False)
        return generate(self.model, self.tokenizer, prompt=ids, max_tokens=self.limit(q), sampler=self.sampler,
                        verbose=False).strip()

    def score(self, q: Question) -> ScoredQuestion:
        """Every target's answer to `q`, scored against its reference."""
        t0 = time.monotonic()
        texts = {t: self.reply(t, q) for t in self.targets}
        return scored(q, texts, time.monotonic() - t0)
