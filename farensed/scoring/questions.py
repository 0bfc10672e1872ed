"""What is asked (pure, no mlx): held-out examples in a fixed order, the eval-time probe's sets,
the job's generate prompts (with a reference when the data holds the same question), and the
means of the scored answers.

The order is drawn from ORDER_SEED, not the job's training seed: every job on the same data asks
the same questions in the same order, so two runs, or the trials of a sweep, score alike.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from farensed.core.datasets import Example, Splits, load_splits, read_jsonl
from farensed.core.formats import (
    TARGETS,
    AnswerScores,
    ProbeSetInfo,
    ScoredQuestion,
    TargetAnswer,
    TargetScore,
)
from farensed.core.jobspec import JobSpec
from farensed.core.paths import Home
from farensed.core.system_prompt import job_system
from farensed.scoring.metrics import exact_match, f1, mean

ORDER_SEED = 19  # fixed for good: changing it changes which questions every job is scored on


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
    questions: list[Question] = field(default_factory=list)  # in the fixed order (ORDER_SEED)
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
    """The held-out questions in the fixed order, so a sample of them is spread over the whole file
    rather than its first lines, and is the same sample for every job on that file."""
    examples, where = _examples(spec, home, splits, data)
    return askable(examples, where)


def askable(examples: list[Example], where: str, kind: str = "held_out") -> HeldOut:
    """The examples that hold a question, in the fixed order (ORDER_SEED), the others counted."""
    order = list(range(len(examples)))
    random.Random(ORDER_SEED).shuffle(order)
    out = HeldOut(where)
    for i in order:
        ex = examples[i]
        messages = ex.prompt_messages()
        if messages is None:
            out.unaskable += 1
            continue
        out.questions.append(Question(kind, len(out.questions), ex.where, messages, ex.answer))
    return out


def scored_questions(spec: JobSpec, held: HeldOut) -> list[Question]:
    """What the final scoring answers: the first `examples` of the fixed order, all when fewer."""
    return held.questions[: spec.evaluate.examples]


@dataclass
class ProbeSet:
    """Questions answered at every eval, scored into one pair of MetricsRow fields."""

    name: str  # "held_out" (evaluate.data or test.jsonl), else "train" and "valid"
    field: str  # MetricsRow prefix: "probe" (the first set, it decides best) or "probe_valid"
    held: HeldOut  # everything askable it is drawn from
    count: int

    @property
    def questions(self) -> list[Question]:
        return self.held.questions[: self.count]

    def info(self) -> ProbeSetInfo:
        return ProbeSetInfo(name=self.name, field=self.field, data=self.held.data, questions=len(self.questions),
                            available=len(self.held.questions), digest=digest(self.questions))


def probe_sets(spec: JobSpec, home: Home, splits: Splits) -> list[ProbeSet]:
    """The held-out file's first `probe` questions; without one (evaluate.data, test.jsonl), half as
    many training questions (did it learn the facts?) and as many validation questions (does it
    carry over to facts it never saw?): `probe` in all, so a probe costs the same either way.
    Empty sets are left out; [] with probe = 0."""
    n = spec.evaluate.probe
    if n == 0:
        return []
    if spec.evaluate.data or splits.test:
        sets = [ProbeSet("held_out", "probe", held_out(spec, home, splits), n)]
    else:
        half = max(1, n // 2)
        sets = [ProbeSet("train", "probe", askable(splits.train, f"the training split ({splits.source})", "train"),
                         half),
                ProbeSet("valid", "probe_valid", askable(splits.valid, f"the validation split ({splits.source})",
                                                         "valid"), max(1, n - half))]
    return [s for s in sets if s.questions]


def digest(questions: list[Question]) -> str:
    """sha256 over what is asked and expected, in order: equal digests, the same questions."""
    text = json.dumps([[q.messages, q.reference] for q in questions], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


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
