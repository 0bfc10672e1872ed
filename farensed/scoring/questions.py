"""What the scoring phase asks (pure, no mlx): held-out examples in a seeded order, the job's
generate prompts (with a reference when the data holds the same question), how many fit the
time budget, and the means of the scored answers."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from farensed.core.datasets import Example, Splits, load_splits, read_jsonl
from farensed.core.formats import TARGETS, AnswerScores, ScoredQuestion, TargetAnswer, TargetScore
from farensed.core.jobspec import JobSpec
from farensed.core.paths import Home
from farensed.core.system_prompt import job_system
from farensed.scoring.metrics import exact_match, f1, mean


@dataclass(frozen=True)
class Question:
    kind: str  # "held_out" or "prompt"
    index: int
    source: str
    messages: list[dict]  # what the model is asked, through its chat template
    reference: str | None

    @property
    def text(self) -> str:
        return next((m["content"] for m in reversed(self.messages) if m["role"] == "user"), "")


@dataclass
class HeldOut:
    data: str  # where the examples come from, in words
    questions: list[Question] = field(default_factory=list)  # in the seeded order
    unaskable: int = 0  # examples with no question (text data, completions with an empty prompt)


def _examples(spec: JobSpec, home: Home, splits: Splits | None, data: Path | None) -> tuple[list[Example], str]:
    """The file given (--data, evaluate.data), else test.jsonl, else the validation split."""
    chosen = data or (home.resolve(spec.evaluate.data) if spec.evaluate.data else None)
    if chosen is not None:
        return read_jsonl(chosen), str(chosen)
    splits = splits or load_splits(home.resolve(spec.data), spec.valid_fraction, spec.training.seed)
    if splits.test:
        return splits.test, splits.test[0].file
    return splits.valid, f"the validation split ({splits.source})"


def held_out(spec: JobSpec, home: Home, splits: Splits | None = None, data: Path | None = None) -> HeldOut:
    """The held-out questions in an order drawn from the job's seed, so a sample of them is spread
    over the whole file rather than its first lines."""
    examples, where = _examples(spec, home, splits, data)
    order = list(range(len(examples)))
    random.Random(spec.training.seed).shuffle(order)
    out = HeldOut(where)
    for i in order:
        ex = examples[i]
        messages = ex.prompt_messages()
        if messages is None:
            out.unaskable += 1
            continue
        out.questions.append(Question("held_out", len(out.questions), ex.where, messages, ex.answer))
    return out


def prompt_questions(spec: JobSpec, splits: Splits | None) -> list[Question]:
    """The job's generate prompts; each one's reference is the answer of the same question in the data."""
    known: dict[str, str] = {}
    for ex in (splits.train + splits.valid + splits.test) if splits else []:
        if ex.question.strip():
            known.setdefault(ex.question.strip(), ex.answer)
    text = job_system(spec, splits)
    system = [{"role": "system", "content": text}] if text else []
    return [Question("prompt", i, f"generate.prompts[{i}]", system + [{"role": "user", "content": p}],
                     known.get(p.strip()))
            for i, p in enumerate(spec.generate.prompts)]


def planned_count(setting: int | str, costs: list[float], budget_seconds: float) -> int:
    """How many held-out examples to answer: the setting, or ("auto") the longest run of them, in
    order, whose estimated costs fit the budget (at least one, so every run shows a score)."""
    if setting != "auto":
        return min(int(setting), len(costs))
    n, total = 0, 0.0
    for cost in costs:
        if n and total + cost > budget_seconds:
            break
        n, total = n + 1, total + cost
    return n


def scored(q: Question, texts: dict[str, str], seconds: float) -> ScoredQuestion:
    """One answers.jsonl line: each model's text with its exact match and F1 (None without a reference)."""
    ref = q.reference
    answers = {t: TargetAnswer(answer=a, exact_match=None if ref is None else exact_match(a, ref),
                               f1=None if ref is None else f1(a, ref)) for t, a in texts.items()}
    return ScoredQuestion(kind=q.kind, index=q.index, source=q.source, question=q.text, reference=ref,
                          answers=answers, seconds=round(seconds, 3))


def means(rows: list[ScoredQuestion], kind: str) -> dict[str, TargetScore]:
    """Mean exact match and F1 per model over the scored rows of one kind."""
    out = {}
    for t in TARGETS:
        got = [r.answers[t] for r in rows if r.kind == kind and t in r.answers and r.answers[t].f1 is not None]
        if got:
            out[t] = TargetScore(exact_match=round(mean(a.exact_match for a in got), 4),
                                 f1=round(mean(a.f1 for a in got), 4))
    return out


def summarize(rows: list[ScoredQuestion], data: str, available: int) -> AnswerScores:
    return AnswerScores(data=data, examples=sum(r.kind == "held_out" for r in rows), available=available,
                        means=means(rows, "held_out"), prompt_means=means(rows, "prompt"),
                        seconds=round(sum(r.seconds for r in rows), 3))
