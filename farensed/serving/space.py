"""Whether an export fits on the disk before it starts (pure): the base weights' size, scaled to
float16 for a dequantized or GGUF export, plus the GGUF and its quantized copies."""

from __future__ import annotations

import shutil
from pathlib import Path

from farensed.core.errors import FarensedError

MARGIN = 1.05


def needed_bytes(model_dir: Path, config: dict, fmt: str, dequantize: bool, quantize: int) -> int:
    stored = sum(p.stat().st_size for p in model_dir.glob("*.safetensors"))
    bits = (config.get("quantization") or {}).get("bits")
    full = stored * 16 // bits if bits else stored
    fused = full if dequantize or fmt != "mlx" else stored
    gguf = full + quantize * full // 3 if fmt != "mlx" else 0
    return int((fused + gguf) * MARGIN)


def size_text(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def check_space(parent: Path, need: int) -> None:
    free = shutil.disk_usage(parent).free
    if free < need:
        raise FarensedError(f"{parent}: {size_text(free)} free, the export needs about {size_text(need)}:"
                            " free some space or choose another --out")
