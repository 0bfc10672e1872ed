"""Batches from real token lengths (numpy only): the deterministic per-epoch order, the
split of a step into micro-batches, and padded arrays with an exact target mask."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from farensed.memory.plan import padded_width


@dataclass(frozen=True)
class Tokenized:
    """A tokenized split: truncated token ids, where the loss starts, and target counts."""

    tokens: list[np.ndarray]
    offsets: np.ndarray  # index of the first token that is a target (completion start)
    truncated: int  # examples cut to max_seq_length
    longest: int  # longest example before truncation

    def fingerprint(self) -> str:
        """sha256 of the tokens and target offsets: the data cursor is only valid for this data."""
        h = hashlib.sha256(self.offsets.tobytes())
        for t in self.tokens:
            h.update(len(t).to_bytes(4, "little") + t.tobytes())
        return h.hexdigest()

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(t) for t in self.tokens], dtype=np.int64)

    @property
    def n_targets(self) -> np.ndarray:
        """Real targets per example: tokens max(offset,1) .. len-1 (no pad target)."""
        return np.maximum(self.lengths - np.maximum(self.offsets, 1), 0)


def tokenize(pairs: list[tuple[list[int], int]], max_seq_length: int) -> Tokenized:
    toks = [np.asarray(t[:max_seq_length], dtype=np.int32) for t, _ in pairs]
    longest = max((len(t) for t, _ in pairs), default=0)
    truncated = sum(len(t) > max_seq_length for t, _ in pairs)
    return Tokenized(toks, np.array([o for _, o in pairs], dtype=np.int64), truncated, longest)


def epoch_plan(lengths: np.ndarray, effective_batch: int, seed: int, epoch: int) -> list[np.ndarray]:
    """The steps of one epoch: examples bucketed by length into effective batches (the last
    one smaller, still trained), in an order derived only from (seed, epoch)."""
    rng = np.random.default_rng([seed, epoch])
    ties = rng.permutation(len(lengths))
    order = np.lexsort((ties, lengths))
    steps = [order[i : i + effective_batch] for i in range(0, len(order), effective_batch)]
    return [steps[i] for i in rng.permutation(len(steps))]


def micro_batches(step: np.ndarray, sizes: Sequence[int]) -> list[np.ndarray]:
    """Consecutive slices of a step's examples, of these sizes; together they are exactly the step."""
    assert sum(sizes) == len(step), (sizes, len(step))
    ends = np.cumsum([0, *sizes])
    return [step[a:b] for a, b in zip(ends[:-1], ends[1:])]


def chunks(order: np.ndarray, size: int) -> list[np.ndarray]:
    return [order[i : i + size] for i in range(0, len(order), size)]


def padded(data: Tokenized, idx: np.ndarray, max_seq_length: int):
    """inputs, targets (int32) and mask (float32) for the examples `idx`."""
    lengths = [len(data.tokens[i]) for i in idx]
    width = padded_width(max(lengths), max_seq_length)
    arr = np.zeros((len(idx), width + 1), dtype=np.int32)
    mask = np.zeros((len(idx), width), dtype=np.float32)
    for row, i in enumerate(idx):
        toks = data.tokens[i]
        arr[row, : len(toks)] = toks
        start = max(int(data.offsets[i]), 1) - 1  # target j predicts token j+1
        mask[row, start : len(toks) - 1] = 1.0
    return arr[:, :-1], arr[:, 1:], mask
