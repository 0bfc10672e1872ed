"""Token-level checks of training data (no mlx): target counts as mlx-lm's datasets and the worker's
batching make them, and the refusal of data that leaves nothing to learn. Shared by validate and the worker."""

from __future__ import annotations

from pathlib import Path

from farensed.core.datasets import Example
from farensed.core.errors import DataError


def token_pairs(tok, examples: list[Example], mask_prompt: bool) -> list[tuple[int, int]]:
    """(length, offset of the first target) of each example, as mlx-lm's datasets tokenize them."""
    out = []
    for ex in examples:
        if ex.format == "text":
            out.append((len(tok.encode(ex.obj["text"])) + 1, 0))
            continue
        msgs = ex.obj["messages"] if ex.format == "chat" else [
            {"role": "user", "content": ex.obj["prompt"]}, {"role": "assistant", "content": ex.obj["completion"]}]
        full = len(tok.apply_chat_template(msgs, tokenize=True, return_dict=False))
        offset = len(tok.apply_chat_template(msgs[:-1], tokenize=True, add_generation_prompt=True,
                                             return_dict=False)) if mask_prompt else 0
        out.append((full, offset))
    return out


def target_count(length: int, offset: int, max_seq_length: int) -> int:
    """Target tokens the loss counts once the example is cut to max_seq_length (the worker's n_targets)."""
    return max(min(length, max_seq_length) - max(offset, 1), 0)


def no_targets_problem(data: Path | str, total: int, max_seq_length: int, mask_prompt: bool) -> str | None:
    """Why training on `data` would learn nothing (zero target tokens in all of it), or None."""
    if total > 0:
        return None
    why = (f"every example is cut at max_seq_length {max_seq_length} before its reply begins (mask_prompt"
           " counts the reply only)") if mask_prompt else f"nothing is left of them at max_seq_length {max_seq_length}"
    return (f"{data}: the training examples hold no target tokens: {why}; training would learn nothing. Raise"
            " max_seq_length or shorten the prompts")


def require_targets(data: Path | str, total: int, max_seq_length: int, mask_prompt: bool) -> None:
    """DataError (the worker's data-error exit) when the tokenized training data has no target token."""
    problem = no_targets_problem(data, total, max_seq_length, mask_prompt)
    if problem:
        raise DataError(problem)
