"""Out-of-memory and GPU-fault policy (pure): recognise the messages, step down the ladder.

Ladder: halve the micro-batch (accumulation grows so the effective batch is unchanged)
down to the floor, then turn on gradient checkpointing, then give up with advice.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

# Messages MLX raises (or prints before aborting) when memory runs out, per backend.
OOM_PATTERNS = (
    r"\[METAL\] Command buffer execution failed: Insufficient Memory",
    r"kIOGPUCommandBufferCallbackErrorOutOfMemory",
    r"\[metal::malloc\] Attempting to allocate",
    r"\[malloc\] Unable to allocate",
    r"\[malloc_or_wait\] Unable to allocate",
    r"cudaMalloc\w*.*(failed|out of memory)",
    r"CUDA error: out of memory",
    r"std::bad_alloc",
)
# Transient GPU faults: the command ran too long while the user works, or was dropped.
GPU_FAULT_PATTERNS = (
    r"kIOGPUCommandBufferCallbackErrorImpactingInteractivity",
    r"kIOGPUCommandBufferCallbackErrorSubmissionsIgnored",
    r"kIOGPUCommandBufferCallbackErrorTimeout",
)
_OOM = re.compile("|".join(OOM_PATTERNS))
_GPU = re.compile("|".join(GPU_FAULT_PATTERNS))


def is_oom_message(text: str) -> bool:
    return bool(_OOM.search(text or ""))


def is_gpu_fault_message(text: str) -> bool:
    return bool(_GPU.search(text or ""))


@dataclass(frozen=True)
class MemorySetting:
    micro_batch: int
    grad_checkpoint: bool

    def accumulation(self, effective_batch: int) -> int:
        return math.ceil(effective_batch / self.micro_batch)


def downshift(current: MemorySetting, floor: int = 1) -> MemorySetting | None:
    """The next rung of the ladder, or None when there is nothing left to lower."""
    if current.micro_batch > floor:
        return MemorySetting(max(floor, current.micro_batch // 2), current.grad_checkpoint)
    if not current.grad_checkpoint:
        return MemorySetting(current.micro_batch, True)
    return None


def exhausted_reason(effective_batch: int, max_seq_length: int) -> str:
    return (f"out of memory at micro-batch 1 with gradient checkpointing (effective batch"
            f" {effective_batch}, {max_seq_length} tokens): lower training.max_seq_length, use a"
            f" smaller or 4-bit model, fewer lora.num_layers, or close other applications")
