"""A rough, static estimate of a job's training memory from the model's config.json and weight
files (no mlx): what `farensectl validate` warns with before anything runs. The worker
measures the real figures on the job's own data before the first step; this only catches
budgets that are clearly too small.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

# Calibrated on the demo model (CPU, fp32) and a Mistral-7B-shaped 4-bit model (CUDA, bf16):
# the simple count below (layer activations, attention scores, logits) is 1.4-1.7x short of
# what MLX keeps, so it is scaled by this.
SLACK = 1.6


@dataclass(frozen=True)
class Estimate:
    weights: int  # bytes of the weight files
    base: float  # bytes before any example: weights, adapters and their optimizer state
    per_token: float  # bytes per token of a micro-batch, without gradient checkpointing
    per_token_checkpointed: float

    def peak(self, tokens: int, checkpointed: bool) -> float:
        return self.base + tokens * (self.per_token_checkpointed if checkpointed else self.per_token)


def weight_bytes(model_dir: Path) -> int:
    return sum(p.stat().st_size for p in Path(model_dir).glob("*.safetensors"))


def estimate(model_dir: Path, lora_layers: int, rank: int, width: int) -> Estimate | None:
    """The estimate for micro-batches of `width` tokens a row; None without a readable config."""
    try:
        cfg = json.loads((Path(model_dir) / "config.json").read_text("utf-8"))
        hidden, inter = int(cfg["hidden_size"]), int(cfg["intermediate_size"])
        layers, heads, vocab = int(cfg["num_hidden_layers"]), int(cfg["num_attention_heads"]), int(cfg["vocab_size"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    depth = layers if lora_layers < 0 else min(lora_layers, layers)
    dtype = 2 if cfg.get("quantization") or cfg.get("torch_dtype") in ("bfloat16", "float16") else 4
    weights = weight_bytes(model_dir)
    adapters = depth * 7 * rank * (hidden + inter) * 4 * 4  # fp32 weights, gradient, Adam's two moments
    layer = dtype * (12 * hidden + 4 * inter) + 4 * heads * width  # one block's saved activations a token
    logits = 3 * vocab * 4
    return Estimate(weights=weights, base=weights + adapters, per_token=SLACK * (logits + depth * layer),
                    per_token_checkpointed=SLACK * (logits + depth * 2 * dtype * hidden + layer))
