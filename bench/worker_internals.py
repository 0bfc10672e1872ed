"""The worker internals a few benchmarks time directly, gathered in this one module.

Benchmarks drive farensed through its public entry points: the `farensed` daemon, `farensectl`, the
`python -m farensed.worker RUN_DIR` subprocess. A few measure one piece of the worker on its own, and
no entry point offers that piece: the compiled micro-step by shape and under memory limits
(bench.memory), a bare loop over the worker's own batches (bench.training.reference_loops), answering
in batches against one at a time (bench.scoring.batched_answers). They import this module, never
`farensed.worker`'s modules themselves (tests/unit/test_bench_layout.py holds it), so that when the
worker's insides move this is the one file to follow them. Importing it imports mlx.
"""

from __future__ import annotations

from farensed.worker import batching
from farensed.worker.answering import batched, one_at_a_time, prompt_ids, target_weights
from farensed.worker.data import tokenize_split
from farensed.worker.grad_checkpoint import set_grad_checkpoint
from farensed.worker.model import adapter_weights, apply_lora, load_base
from farensed.worker.step import StepFunctions, make_optimizer, token_sum_loss

__all__ = [
    "StepFunctions",  # the compiled micro-step and update, as the trainer runs them
    "adapter_weights",
    "apply_lora",
    "batched",  # answers decoded together (the scoring phase's way)
    "batching",  # the epoch plan, micro-batches, padding
    "load_base",
    "make_optimizer",
    "one_at_a_time",
    "prompt_ids",
    "set_grad_checkpoint",
    "target_weights",
    "token_sum_loss",
    "tokenize_split",
]
