"""Which rank computes which examples of a step (numpy only, pure).

The split is a function of the step's example lengths and the rank count alone, so every
rank computes it alike without talking, and a resumed run splits each step as before.
"""

from __future__ import annotations

import numpy as np


def shares(lengths: np.ndarray, size: int) -> list[np.ndarray]:
    """Positions of a step's examples for each rank, balancing tokens: longest first, each to
    the rank with the fewest tokens so far (ties to the lower rank); each share keeps step order."""
    lengths = np.asarray(lengths, dtype=np.int64)
    load = np.zeros(size, dtype=np.int64)
    owner = np.empty(len(lengths), dtype=np.int64)
    for i in np.argsort(-lengths, kind="stable"):
        r = int(np.argmin(load))
        owner[i] = r
        load[r] += lengths[i]
    return [np.flatnonzero(owner == r) for r in range(size)]


def share(step: np.ndarray, lengths: np.ndarray, rank: int, size: int) -> np.ndarray:
    """The examples (indices into the training set) of `step` that `rank` computes."""
    if size == 1:
        return step
    return step[shares(lengths[step], size)[rank]]
