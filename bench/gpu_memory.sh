#!/usr/bin/env bash
# Issue 11's accelerator runs in one command (under 9 minutes): build the Mistral-7B-shaped 4-bit
# model, then bench/worker_bench.py on the guide's job (4 x 2, 512 tokens, LoRA on 16 layers,
# mask_prompt) with the user's real data: farensed with a 12 GB budget and without, mlx_lm lora
# at its batch and at the largest batches that fit the budget (with and without
# --grad-checkpoint), and a bare compiled MLX loop. A first short farensed run compiles MLX's
# kernels (~170 s on a fresh CUDA machine) so that the measured runs do not pay for it.
# Results land in $OUT: bench.txt (the table), bench.json (every figure, saved after each run),
# build.txt, nvidia-smi.txt.
#
# Here first:   ../shared/gpu/stage first|second (see ../shared/gpu/README.md), bench/gpu_prepare.sh
# On the device (carry .device and bench/device-inputs), from the checkout root:
#   cp .device/* /root/stash/ && bash /root/stash/device-setup.sh && . /root/stash/env.sh && bash bench/gpu_memory.sh
# On this CPU, to try it (a 4-layer twin; mlx-cpu's 4-bit path is slow):
#   SMALL=1 STEPS=4 WARMUP=2 PY=.venv/bin/python OUT=/tmp/gpu-try bash bench/gpu_memory.sh
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
OUT=${OUT:-bench/results/gpu}
IN=${INPUTS:-bench/device-inputs}
STEPS=${STEPS:-40}           # measured steps a run (effective batch 8)
WARMUP=${WARMUP:-12}         # steps of the first, compiling run
BUDGET=${BUDGET:-12}         # memory.budget_gb
LIMIT=${LIMIT:-520}          # seconds for all of it; what has finished by then is in $OUT
MODEL=${MODEL_DIR:-/tmp/m7b4${SMALL:+-small}}
mkdir -p "$OUT"
start=$(date +%s)
[ -f "$IN/mirobaldo-3.0.jsonl" ] || { echo "no $IN: run bench/gpu_prepare.sh here and carry bench/device-inputs" >&2; exit 2; }
if [ ! -f "$MODEL/config.json" ]; then
  $PY "$IN/build_7b_shape.py" "$IN/tokenizer" "$MODEL" 2>&1 | tee "$OUT/build.txt"
fi
(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "no nvidia-smi") > "$OUT/nvidia-smi.txt" 2>&1
left=$(( LIMIT - ($(date +%s) - start) ))
echo "model ready after $(( $(date +%s) - start )) s; $left s left for the benchmark" | tee "$OUT/bench.txt"
timeout --signal=INT --kill-after=10 "$left" $PY bench/worker_bench.py --model "$MODEL" \
  --data "$IN/mirobaldo-3.0.jsonl" --budget-gb "$BUDGET" --guide --steps "$STEPS" --warmup-steps "$WARMUP" \
  --no-restart --json "$OUT/bench.json" 2>&1 | tee -a "$OUT/bench.txt"
echo "total $(( $(date +%s) - start )) s" | tee -a "$OUT/bench.txt"
