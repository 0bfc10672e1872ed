"""`python -m farensed.worker.export --model M --adapter-path A --save-path S [--dequantize]`.

Fuses LoRA/DoRA adapters into the base model with mlx-lm's own pieces (what `mlx_lm fuse`
does), so the result loads with plain `mlx_lm.load` / `mlx_lm.generate`, without farensed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from farensed.worker.entry import run_mlx_command


def parse(argv):
    ap = argparse.ArgumentParser(prog="python -m farensed.worker.export", description=__doc__)
    ap.add_argument("--model", required=True, help="base model folder or hub id")
    ap.add_argument("--adapter-path", required=True, help="adapter folder (adapters.safetensors + adapter_config.json)")
    ap.add_argument("--save-path", required=True, type=Path)
    ap.add_argument("--dequantize", action="store_true", help="write full-precision weights")
    ap.add_argument("--trust-remote-code", action="store_true")
    return ap.parse_args(argv)


def fuse(args) -> None:
    from mlx.utils import tree_unflatten
    from mlx_lm.utils import dequantize_model, load, save

    model, tokenizer, config = load(args.model, adapter_path=args.adapter_path, return_config=True,
                                    trust_remote_code=args.trust_remote_code)
    fused = [(n, m.fuse(dequantize=args.dequantize)) for n, m in model.named_modules() if hasattr(m, "fuse")]
    if fused:
        model.update_modules(tree_unflatten(fused))
    if args.dequantize:
        model = dequantize_model(model)
        config.pop("quantization", None)
        config.pop("quantization_config", None)
    save(args.save_path, args.model, model, tokenizer, config, donate_model=False)


def main(argv=None) -> int:
    args = parse(argv)
    code = run_mlx_command(fuse, args, "export")
    if code == 0:
        print(f"fused model written to {args.save_path}")
    return code


if __name__ == "__main__":
    sys.exit(main())
