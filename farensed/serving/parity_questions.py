"""The fixed questions an export is checked with (pure): the job's generate prompts, then the first
held-out questions in the job's seeded order, each asked with the job's system prompt."""

from __future__ import annotations

from farensed.core.datasets import load_splits
from farensed.core.errors import FarensedError
from farensed.core.exports import ParityQuestion
from farensed.core.jobspec import JobSpec
from farensed.core.paths import Home
from farensed.core.system_prompt import job_system
from farensed.scoring.questions import held_out, prompt_questions

HELD_OUT = 4  # enough to catch a fused model that answers differently, few enough to stay quick


def parity_questions(spec: JobSpec, home: Home, held: int = HELD_OUT) -> list[ParityQuestion]:
    try:
        splits = load_splits(home.resolve(spec.data), spec.valid_fraction, spec.training.seed)
    except (FarensedError, OSError, UnicodeDecodeError):
        splits = None  # the data moved since training: the prompts alone
    system = job_system(spec, splits)
    asked = prompt_questions(spec, splits)
    if splits is not None:
        asked += held_out(spec, home, splits).questions[:held]
    out = []
    for q in asked:
        msgs = q.messages
        if system and msgs[0]["role"] != "system":  # completions data: asked as the job's prompts are
            msgs = [{"role": "system", "content": system}] + msgs
        out.append(ParityQuestion(source=q.source, messages=msgs))
    return out
