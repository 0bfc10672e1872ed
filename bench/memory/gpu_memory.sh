#!/usr/bin/env bash
# Issue 11's accelerator runs in one command (under 9 minutes): build the Mistral-7B-shaped 4-bit
# model, then bench/training/worker_bench.py on the guide's job (4 x 2, 512 tokens, LoRA on 16 layers,
# mask_prompt) with the user's real data: farensed with a 12 GB budget and without, mlx_lm lora
# at its batch and at the largest batches that fit the budget (with and without
# --grad-checkpoint), and a bare compiled MLX loop. A first short farensed run compiles MLX's
# kernels (~170 s on a fresh CUDA machine) so that the measured runs do not pay for it.
# Results land in $OUT: bench.txt (the table), bench.json (every figure, saved after each run),
# build.txt, nvidia-smi.txt. MLX's compiled CUDA kernels (/tmp/mlx) come back as $OUT/ptx.tgz; put it in
# bench/device-inputs/ and a later machine starts with them (the first compile then takes seconds, not minutes).
#
# Here first:   ../shared/gpu/stage first|second (see ../shared/gpu/README.md), bench/memory/gpu_prepare.sh
# On the device (carry .device and bench/device-inputs), from the checkout root:
#   cp .device/* /root/stash/ && bash /root/stash/device-setup.sh && . /root/stash/env.sh && bash bench/memory/gpu_memory.sh
# On this CPU, to try the script itself, with the demo model in place of the 7B shape:
#   MODEL_DIR=models/farense-tiny BUDGET=0.06 WARMUP=3 LIMIT=900 PY=.venv/bin/python OUT=/tmp/gpu-try \
#     bash bench/memory/gpu_memory.sh
# (SMALL=1 builds the 4-layer 4-bit twin instead, but mlx-cpu's 4-bit path takes minutes a step here.)
set -uo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-python3}
OUT=${OUT:-bench/results/gpu}
IN=${INPUTS:-bench/device-inputs}
STEPS=${STEPS:-40}           # steps a run (effective batch 8); the first 10 are not measured
WARMUP=${WARMUP:-6}          # steps of the first, compiling run
BUDGET=${BUDGET:-12}         # memory.budget_gb
# FARENSED_ONLY=1: farensed's two runs alone (no bare loop, no mlx_lm), about 2.5 minutes; BARE=1 adds the bare loop
LIMIT=${LIMIT:-540}          # seconds for all of it (device-setup comes before); what has finished is in $OUT
MODEL=${MODEL_DIR:-/tmp/m7b4${SMALL:+-small}}
mkdir -p "$OUT"
start=$(date +%s)
[ -f "$IN/mirobaldo-3.0.jsonl" ] || { echo "no $IN: run bench/memory/gpu_prepare.sh here and carry bench/device-inputs" >&2; exit 2; }
if [ ! -f "$MODEL/config.json" ]; then
  $PY "$IN/build_7b_shape.py" "$IN/tokenizer" "$MODEL" 2>&1 | tee "$OUT/build.txt"
fi
[ -f "$IN/ptx.tgz" ] && [ ! -d /tmp/mlx ] && tar xzf "$IN/ptx.tgz" -C /tmp && echo "MLX kernels from $IN/ptx.tgz"
(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "no nvidia-smi") > "$OUT/nvidia-smi.txt" 2>&1
left=$(( LIMIT - ($(date +%s) - start) ))
echo "model ready after $(( $(date +%s) - start )) s; $left s left for the benchmark" | tee "$OUT/bench.txt"
timeout --signal=INT --kill-after=10 "$left" $PY -m bench.training.worker_bench --model "$MODEL" \
  --data "$IN/mirobaldo-3.0.jsonl" --budget-gb "$BUDGET" --guide --steps "$STEPS" --warmup-steps "$WARMUP" \
  --no-restart ${FARENSED_ONLY:+--farensed-only} ${BARE:+--bare} --json "$OUT/bench.json" 2>&1 | tee -a "$OUT/bench.txt"
echo "total $(( $(date +%s) - start )) s" | tee -a "$OUT/bench.txt"
[ -d /tmp/mlx ] && tar czf "$OUT/ptx.tgz" -C /tmp mlx
