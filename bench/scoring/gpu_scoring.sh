#!/usr/bin/env bash
# ON THE ACCELERATOR (after ../shared/gpu/stage and device-setup.sh; carry .device and bench/device-inputs):
#   bash bench/scoring/gpu_scoring.sh answers   # batched vs one at a time, 64 questions x 48 tokens, base/best/final
#   bash bench/scoring/gpu_scoring.sh probe     # the probe's cost on the guide's job (7B shape, the user's data)
# Here first: bench/memory/gpu_prepare.sh. Results in $OUT (default bench/results/gpu).
set -uo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-python3}
OUT=${OUT:-bench/results/gpu}
IN=${INPUTS:-bench/device-inputs}
MODEL=${MODEL_DIR:-/tmp/m7b4}
STEPS=${STEPS:-60}
mkdir -p "$OUT"
[ -f "$MODEL/config.json" ] || $PY "$IN/build_7b_shape.py" "$IN/tokenizer" "$MODEL" > "$OUT/build.txt" 2>&1
[ -f "$IN/ptx.tgz" ] && [ ! -d /tmp/mlx ] && tar xzf "$IN/ptx.tgz" -C /tmp && echo "MLX kernels from $IN/ptx.tgz"
case "${1:-answers}" in
answers)
  timeout --signal=INT 520 $PY -m bench.scoring.batched_answers --model "$MODEL" --data "$IN/mirobaldo-3.0.jsonl" \
    -n 64 --max-tokens "${MAX_TOKENS:-48}" --json "$OUT/batched.json" 2>&1 | tee "$OUT/batched.txt" ;;
probe)
  home=$(mktemp -d); mkdir -p "$home/models" "$home/checkpoints/probe"; ln -s "$MODEL" "$home/models/m"
  cat > "$home/checkpoints/probe/job.toml" <<JOB
schema_version = 1
name = "probe"
model = "models/m"
data = "$(realpath "$IN/mirobaldo-3.0.jsonl")"
[training]
max_steps = $STEPS
[cadence]
eval_every = 20
checkpoint_every = 100000
checkpoint_every_minutes = 0
log_every = 10
[evaluate]
examples = 0
probe = 32
JOB
  timeout --signal=INT 520 $PY -m farensed.worker "$home/checkpoints/probe" --home "$home" > "$OUT/probe.log" 2>&1
  echo "worker exit $?"
  $PY - "$home/checkpoints/probe" <<'PYEOF' | tee "$OUT/probe.txt"
import json, math, sys
from pathlib import Path
run = Path(sys.argv[1])
rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
if not rows:
    rows = json.loads((run / "training_metrics.json").read_text()).get("rows", [])
train = [r for r in rows if r["kind"] == "train" and r.get("steps_per_sec") and r["step"] > 20]
evals = [r for r in rows if r["kind"] == "eval" and r.get("probe_seconds") is not None]
sps = sum(r["steps_per_sec"] for r in train) / len(train)
probe = [r["probe_seconds"] for r in evals]
steady = probe[1:] or probe  # the first probe compiles the batch shapes
ev = [r.get("eval_seconds") for r in evals if r.get("eval_seconds") is not None]
steps = 3 * math.ceil(0.9 * 943 / 8)  # the guide: 3 epochs of ~849 training examples, 8 a step
n_evals = steps // 200 + 1  # every 200 steps, and the end
train_s = steps / sps
print(f"steps/s {sps:.3f}; probes (s): {', '.join(f'{p:.1f}' for p in probe)}; val loss evals (s): "
      f"{', '.join(f'{e:.1f}' for e in ev)}")
mean = sum(steady) / len(steady)
print(f"guide-size job: ~{steps} steps = {train_s:.0f} s of training, {n_evals} evals: probes "
      f"{n_evals * mean:.0f} s = {100 * n_evals * mean / train_s:.1f}% of the training time")
PYEOF
  ;;
esac
[ -d /tmp/mlx ] && tar czf "$OUT/ptx.tgz" -C /tmp mlx
