#!/usr/bin/env bash
# HERE (not on the device), from the checkout: copy what the accelerator runs need from outside the
# checkout into bench/device-inputs/ (git-ignored; name it in the device call's `carry`):
# the demo model's tokenizer (for the 7B-shaped model), the user's real data, the model builder.
set -euo pipefail
root=$(git rev-parse --show-toplevel)
shared=${SHARED:-$root/../shared}
out=$root/bench/device-inputs
[ -f "$out/ptx.tgz" ] && mv "$out/ptx.tgz" "${TMPDIR:-/tmp}/farensed-ptx.tgz"  # MLX's kernels from a last run: kept
rm -rf "$out"
mkdir -p "$out/tokenizer"
[ -f "${TMPDIR:-/tmp}/farensed-ptx.tgz" ] && mv "${TMPDIR:-/tmp}/farensed-ptx.tgz" "$out/ptx.tgz"
for f in tokenizer.json tokenizer_config.json special_tokens_map.json generation_config.json; do
  cp "$root/models/farense-tiny/$f" "$out/tokenizer/"
done
cp "$shared/real-data/mirobaldo-3.0/training_data_lora.jsonl" "$out/mirobaldo-3.0.jsonl"
cp "$shared/gpu/build_7b_shape.py" "$out/"
du -sh "$out"
