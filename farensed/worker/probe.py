"""`python -m farensed.worker.probe`: what MLX sees on this machine, as one JSON line
(for farensectl doctor, which must not import mlx itself)."""

from __future__ import annotations

import json
import sys
from importlib.metadata import version


def probe() -> dict:
    import mlx.core as mx

    info = {"mlx": version("mlx"), "mlx_lm": version("mlx-lm"), "device": str(mx.default_device().type).split(".")[-1],
            "metal": bool(mx.metal.is_available()), "cuda": bool(getattr(mx, "cuda", None) and mx.cuda.is_available())}
    try:
        details = mx.device_info()
        info["device_name"] = details.get("device_name") or details.get("architecture")
        info["memory_bytes"] = details.get("memory_size")
        info["recommended_working_set_bytes"] = details.get("max_recommended_working_set_size")
    except Exception as e:  # older mlx: no device_info
        info["device_name"] = f"unknown ({e})"
    return info


if __name__ == "__main__":
    json.dump(probe(), sys.stdout)
    sys.stdout.write("\n")
