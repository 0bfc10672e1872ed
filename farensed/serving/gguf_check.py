"""A GGUF file read back with llama.cpp's own reader (the `gguf` package; numpy, no mlx) and every
tensor checked against the fused weights it was made from: llama.cpp's tensor names, shapes
(with llama.cpp's q/k row order undone), and values equal up to float16 rounding."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from farensed.core.exports import TensorMismatch, TensorParity

# Hugging Face llama-family names -> llama.cpp's (the names llama.cpp's convert script writes)
BLOCK_NAMES = {
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
    "block_sparse_moe.gate": "ffn_gate_inp",
}
EXPERT_NAMES = {"w1": "ffn_gate", "w2": "ffn_down", "w3": "ffn_up"}
TOP_NAMES = {"model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output"}
F16_REL = 2.0**-11  # half a float16 ulp, relative
F16_ABS = 2.0**-25  # half the spacing of float16's subnormals


def gguf_name(name: str) -> str | None:
    """The llama.cpp tensor name of a fused weight, or None when llama.cpp has no such tensor."""
    stem, _, kind = name.rpartition(".")
    if stem in TOP_NAMES:
        return f"{TOP_NAMES[stem]}.{kind}"
    if m := re.fullmatch(r"model\.layers\.(\d+)\.block_sparse_moe\.experts\.(\d+)\.(w[123])", stem):
        return f"blk.{m[1]}.{EXPERT_NAMES[m[3]]}.{m[2]}.{kind}"
    if (m := re.fullmatch(r"model\.layers\.(\d+)\.(.+)", stem)) and m[2] in BLOCK_NAMES:
        return f"blk.{m[1]}.{BLOCK_NAMES[m[2]]}.{kind}"
    return None


def unpermute(w: np.ndarray, heads: int) -> np.ndarray:
    """Undo llama.cpp's row order of q/k projections (each head's two rotary halves interleaved)."""
    return w.reshape(heads, w.shape[0] // heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def heads_of(name: str, config: dict) -> int | None:
    if name.endswith("self_attn.q_proj.weight"):
        return config["num_attention_heads"]
    if name.endswith("self_attn.k_proj.weight"):
        return config.get("num_key_value_heads", config["num_attention_heads"])
    return None


def _compare(name: str, stored: np.ndarray, fused: np.ndarray, exact: bool) -> tuple[str | None, float]:
    if stored.shape != fused.shape:
        return f"shape {list(stored.shape)} in the GGUF, {list(fused.shape)} fused", 0.0
    err = np.abs(stored - fused)
    worst = float(err.max()) if err.size else 0.0
    bound = 0.0 if exact else np.abs(fused) * F16_REL + F16_ABS
    if not np.all(np.isfinite(stored)) or np.any(err > bound):
        return f"values differ by up to {worst:.3g}, more than float16 rounding", worst
    return None, worst


def check_gguf(path: Path, fused: dict[str, np.ndarray], config: dict) -> TensorParity:
    """Every fused weight (float32 numpy arrays, Hugging Face names) against the GGUF's tensors."""
    from gguf import GGMLQuantizationType, GGUFReader

    stored = {t.name: t for t in GGUFReader(str(path)).tensors}
    seen, mismatched, missing, worst = set(), [], [], 0.0
    for name, weight in fused.items():
        target = gguf_name(name)
        if target is None or target not in stored:
            missing.append(f"{name} (as {target})" if target else name)
            continue
        seen.add(target)
        t = stored[target]
        data = np.asarray(t.data, dtype=np.float32)
        heads = heads_of(name, config)
        if heads and data.shape == weight.shape:
            data = unpermute(data, heads)
        why, err = _compare(name, data, weight, t.tensor_type == GGMLQuantizationType.F32)
        worst = max(worst, err)
        if why:
            mismatched.append(TensorMismatch(name=target, why=why))
    types: dict[str, int] = {}
    for t in stored.values():
        types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + 1
    return TensorParity(file=path.name, tensors=len(fused), matched=len(seen) - len(mismatched),
                        max_abs_error=worst, types=types, missing=missing, extra=sorted(set(stored) - seen),
                        mismatched=mismatched)


def gguf_facts(path: Path) -> dict[str, object]:
    """A few header fields worth showing (architecture, tokenizer model, vocabulary size)."""
    from gguf import GGUFReader

    fields = GGUFReader(str(path)).fields

    def text(key: str) -> str | None:
        f = fields.get(key)
        return bytes(f.parts[f.data[0]]).decode("utf-8") if f else None

    tokens = fields.get("tokenizer.ggml.tokens")
    return {"architecture": text("general.architecture"), "tokenizer": text("tokenizer.ggml.model"),
            "tokens": len(tokens.data) if tokens else 0}


def _byte_level(tokenizer_json: Path) -> bool:
    import json

    try:
        tok = json.loads(tokenizer_json.read_text("utf-8"))
    except (OSError, ValueError):
        return False
    parts = [tok.get("pre_tokenizer") or {}, tok.get("decoder") or {}]
    parts += [p for part in list(parts) for p in part.get("pretokenizers", part.get("decoders", []))]
    return any(p.get("type") == "ByteLevel" for p in parts)


def tokenizer_note(model_dir: Path, facts: dict[str, object]) -> str | None:
    """mlx-lm writes every vocabulary as SentencePiece's ("llama"); a byte-level BPE tokenizer
    (GPT-2 style) then tokenizes differently in llama.cpp and Ollama."""
    if facts.get("tokenizer") == "llama" and _byte_level(model_dir / "tokenizer.json"):
        return ("tokenizer: this model's tokenizer is byte-level BPE, which mlx-lm's GGUF export writes as a"
                " SentencePiece ('llama') vocabulary: llama.cpp and Ollama will split text differently, so the"
                " GGUF's answers can differ although every tensor matches")
    return None
