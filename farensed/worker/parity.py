"""Parity of an export: the same fixed questions answered greedily by base+adapters and by the
exported model, and a GGUF's tensors read back against the fused weights."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import mlx.core as mx
import numpy as np
from mlx_lm import generate
from mlx_lm.sample_utils import make_sampler

from farensed.core.exports import AnswerDiff, AnswerParity, ParityQuestion, TensorParity
from farensed.serving.gguf_check import check_gguf


def greedy_answers(model, tokenizer, questions: list[ParityQuestion], max_tokens: int) -> list[str]:
    sampler = make_sampler(temp=0.0)
    out = []
    for q in questions:
        ids = tokenizer.apply_chat_template(q.messages, add_generation_prompt=True)
        out.append(generate(model, tokenizer, prompt=ids, max_tokens=max_tokens, sampler=sampler, verbose=False))
    return out


def _first_difference(a: str, b: str) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def compare(exported: str, questions: list[ParityQuestion], ours: list[str], theirs: list[str],
            max_tokens: int) -> AnswerParity:
    """Which answers are identical, and where each of the others parts from the adapters' answer."""
    diffs = [AnswerDiff(index=i, source=q.source, question=q.text, adapters=a, exported=b,
                        first_difference=_first_difference(a, b))
             for i, (q, a, b) in enumerate(zip(questions, ours, theirs)) if a != b]
    return AnswerParity(exported=exported, questions=len(questions), identical=len(questions) - len(diffs),
                        max_tokens=max_tokens, differing=diffs)


def as_numpy(weights: dict[str, mx.array]) -> dict[str, np.ndarray]:
    """float32 copies (numpy has no bfloat16) of the fused weights, by their Hugging Face names."""
    return {k: np.array(v.astype(mx.float32)) for k, v in weights.items()}


def tensor_parity(gguf: Path, weights: dict[str, mx.array], config: dict) -> TensorParity:
    return check_gguf(gguf, as_numpy(weights), config)


def gguf_runtime() -> str | None:
    """A GGUF runtime this Python can drive: llama-cpp-python (the only one answered with here)."""
    return "llama-cpp-python" if importlib.util.find_spec("llama_cpp") else None


def gguf_answers(gguf: Path, tokenizer, questions: list[ParityQuestion], max_tokens: int) -> list[str]:
    """Greedy answers of the GGUF through llama-cpp-python, on the same prompt text."""
    from llama_cpp import Llama

    llm = Llama(model_path=str(gguf), n_ctx=2048, verbose=False, seed=0, n_threads=os.cpu_count() or 1)
    out = []
    for q in questions:
        text = tokenizer.apply_chat_template(q.messages, add_generation_prompt=True, tokenize=False)
        out.append(llm(text, max_tokens=max_tokens, temperature=0.0, top_k=1)["choices"][0]["text"])
    return out
