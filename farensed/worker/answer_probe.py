"""The answer probe at every eval: the model as it stands answers a fixed set of questions
(greedy, batched) and each set's mean F1 and exact match go into the eval's metrics row.

The questions are fixed by the data alone (scoring.questions.probe_sets), so every eval, every
run and every trial of a sweep on the same data asks the same ones; their digest is kept in
training_state.json (ProbePlan). Dropout is off and gradient checkpointing unwrapped while it
answers; the model is left as it was found. Only rank 0 answers (worker.evaluation).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from farensed.core.datasets import Splits
from farensed.core.jobspec import JobSpec
from farensed.core.paths import Home
from farensed.scoring.metrics import exact_match, f1, mean
from farensed.scoring.questions import ProbeSet, probe_sets
from farensed.worker.answering import ANSWER_BATCH, batched, prompt_ids
from farensed.worker.grad_checkpoint import is_grad_checkpointed, set_grad_checkpoint


@dataclass
class ProbeResult:
    """One probe: per set field ("probe", "probe_valid") its mean F1 and exact match, and the cost."""

    f1: dict[str, float]
    exact: dict[str, float]
    seconds: float
    questions: int

    def row_values(self) -> dict[str, float]:
        """The MetricsRow fields: probe_f1, probe_exact, probe_valid_f1, ..., probe_seconds."""
        out = {f"{k}_f1": round(v, 4) for k, v in self.f1.items()}
        out |= {f"{k}_exact": round(v, 4) for k, v in self.exact.items()}
        return out | {"probe_seconds": round(self.seconds, 3)}

    @property
    def score(self) -> float | None:
        """The first set's F1, as its metrics row keeps it: what "best" is chosen by."""
        return round(self.f1["probe"], 4) if "probe" in self.f1 else None


class AnswerProbe:
    """The probe's question sets, tokenized once."""

    def __init__(self, spec: JobSpec, home: Home, splits: Splits, tokenizer, batch: int = ANSWER_BATCH):
        self.sets: list[ProbeSet] = probe_sets(spec, home, splits)
        self.tokenizer, self.batch = tokenizer, batch
        self.max_tokens, self.cap = spec.evaluate.max_tokens, spec.evaluate.probe_max_tokens
        self._prompts = {s.field: [prompt_ids(tokenizer, q.messages) for q in s.questions] for s in self.sets}
        self._limits = {s.field: [self._limit(q.reference) for q in s.questions] for s in self.sets}

    def _limit(self, reference: str) -> int:
        """As the final scoring's (the setting, else twice the reference's tokens plus 16), at most
        probe_max_tokens: the probe compares evals with each other, and long answers made it cost
        most of a guide-size job on an H200 (the user's references run to hundreds of tokens)."""
        limit = self.max_tokens or 2 * len(self.tokenizer.encode(reference, add_special_tokens=False)) + 16
        return min(limit, self.cap) if self.cap else limit

    @property
    def questions(self) -> int:
        return sum(len(s.questions) for s in self.sets)

    def run(self, model) -> ProbeResult:
        """Every set answered by `model` as it is now; its train mode and checkpointing restored."""
        t0, training, wrapped = time.monotonic(), model.training, is_grad_checkpointed(model)
        set_grad_checkpoint(model, False)  # generation passes a KV cache, which mx.checkpoint cannot trace
        model.eval()
        try:
            got = {s.field: self._answer(model, s) for s in self.sets}
        finally:
            set_grad_checkpoint(model, wrapped)
            model.train(training)
        return ProbeResult(f1={k: v[0] for k, v in got.items()}, exact={k: v[1] for k, v in got.items()},
                           seconds=time.monotonic() - t0, questions=self.questions)

    def _answer(self, model, s: ProbeSet) -> tuple[float, float]:
        texts = batched(model, self.tokenizer, self._prompts[s.field], self._limits[s.field], batch=self.batch)
        refs = [q.reference for q in s.questions]
        return mean(map(f1, texts, refs)), mean(map(exact_match, texts, refs))
