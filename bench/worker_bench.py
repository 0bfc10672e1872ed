"""Benchmark: the farensed worker against `mlx_lm lora` on the same tiny-model job, in one run.

Same model, data, batch, steps, sequence length, LoRA layers and BLAS (both started with
farensed.blas.worker_env()). Prints tokens/s of each and the ratio, checkpoint time as a
share of wall time at the default cadence (every 200 steps), and restart-to-first-step time.

    .venv/bin/python bench/worker_bench.py [--steps 400]
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from farensed.blas import inspect, worker_env  # noqa: E402

MODEL, DATA = ROOT / "models" / "farense-tiny", ROOT / "data"
BATCH, SEQ, LR = 4, 256, 1e-3
KEYS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
        "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]


# mlx_lm.lora.run() builds its own reporting callback; swap in one that prints its figures.
MLX_LM_DRIVER = """
import json, sys
import mlx_lm.lora as lora
from mlx_lm.tuner.callbacks import TrainingCallback
class Report(TrainingCallback):
    def on_train_loss_report(self, info):
        print("REPORT " + json.dumps(info), flush=True)
lora.get_reporting_callbacks = lambda *a, **k: Report()
sys.argv = ["mlx_lm.lora"] + sys.argv[1:]
lora.main()
"""


def job_toml(steps: int) -> str:
    return f'''name = "bench"
model = "{MODEL}"
data = "{DATA}"
mask_prompt = false
[training]
batch_size = {BATCH}
grad_accumulation = 1
learning_rate = {LR}
max_steps = {steps}
max_seq_length = {SEQ}
warmup_steps = 0
optimizer = "adam"
[lora]
num_layers = -1
[cadence]
eval_every = 100000
log_every = 50
checkpoint_every_minutes = 0
'''


def events(log: Path, name: str) -> list[dict]:
    out = []
    for line in log.read_text().splitlines():
        if f'"event": "{name}"' in line:
            out.append(json.loads(line))
    return out


def run_farensed(tmp: Path, steps: int, env: dict | None = None, name: str = "farensed") -> dict:
    run = tmp / name
    run.mkdir()
    (run / "job.toml").write_text(job_toml(steps))
    log = run / "worker.log"
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "farensed.worker", str(run), "--home", str(tmp)], env=env or worker_env(),
                   stdout=open(log, "w"), stderr=subprocess.STDOUT, check=True)
    wall = time.monotonic() - t0
    summary = json.loads((run / "training_summary.json").read_text())
    ckpt = sum(e["seconds"] for e in events(log, "checkpoint_saved"))
    rows = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    rates = [r["tokens_per_sec"] for r in rows if r["kind"] == "train"]
    steady = rates[1:] or rates
    return {"tokens_per_sec": summary["tokens"] / summary["seconds"], "steady_tokens_per_sec": sum(steady) / len(steady),
            "train_seconds": summary["seconds"], "wall": wall, "checkpoint_seconds": ckpt,
            "checkpoints": len(events(log, "checkpoint_saved")), "run": run}


def run_mlx_lm(tmp: Path, steps: int) -> dict:
    out = tmp / "mlx_lm"
    cfg = tmp / "lora.yaml"
    cfg.write_text(json.dumps({"lora_parameters": {"rank": 8, "scale": 16.0, "dropout": 0.0, "keys": KEYS}}))
    cmd = [sys.executable, "-c", MLX_LM_DRIVER, "--model", str(MODEL), "--train", "--data", str(DATA),
           "--batch-size", str(BATCH), "--iters", str(steps), "--max-seq-length", str(SEQ), "--num-layers", "-1",
           "--learning-rate", str(LR), "--optimizer", "adam", "--steps-per-report", "50",
           "--steps-per-eval", "100000", "--val-batches", "1", "--save-every", "100000",
           "--adapter-path", str(out), "-c", str(cfg)]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, env=worker_env(), capture_output=True, text=True, check=True)
    wall = time.monotonic() - t0
    reports = [json.loads(line[7:]) for line in proc.stdout.splitlines() if line.startswith("REPORT ")]
    rates = [r["tokens_per_second"] for r in reports]
    return {"tokens_per_sec": sum(rates) / len(rates), "steady_tokens_per_sec": sum(rates[1:]) / max(len(rates) - 1, 1),
            "wall": wall}


def restart_time(tmp: Path, steps: int) -> float:
    """SIGTERM a running worker, start it again: seconds from the new process's start to its first step."""
    run = tmp / "restart"
    run.mkdir()
    (run / "job.toml").write_text(job_toml(steps))
    log = run / "worker.log"
    cmd = [sys.executable, "-m", "farensed.worker", str(run), "--home", str(tmp)]
    p = subprocess.Popen(cmd, env=worker_env(), stdout=open(log, "a"), stderr=subprocess.STDOUT)
    while not events(log, "step_report"):
        time.sleep(0.05)
    p.send_signal(signal.SIGTERM)
    p.wait()
    subprocess.run(cmd, env=worker_env(), stdout=open(log, "a"), stderr=subprocess.STDOUT, check=True)
    return events(log, "first_step_done")[-1]["seconds_since_process_start"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=400)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        print(f"BLAS: {inspect().in_use}")
        print(f"job: demo model, {args.steps} steps x batch {BATCH}, max {SEQ} tokens, LoRA all layers\n")
        ours, ref = run_farensed(tmp, args.steps), run_mlx_lm(tmp, args.steps)
        print(f"{'':28}{'farensed':>12}{'mlx_lm lora':>14}{'ratio':>8}")
        for key, label in (("tokens_per_sec", "tokens/s (whole run)"), ("steady_tokens_per_sec", "tokens/s (after warm-up)")):
            print(f"{label:28}{ours[key]:>12.0f}{ref[key]:>14.0f}{ours[key] / ref[key]:>8.2f}x")
        print(f"{'process wall time (s)':28}{ours['wall']:>12.1f}{ref['wall']:>14.1f}")
        share = ours["checkpoint_seconds"] / ours["train_seconds"]
        print(f"\ncheckpoints: {ours['checkpoints']} written in {ours['checkpoint_seconds']:.3f} s ="
              f" {share:.2%} of {ours['train_seconds']:.1f} s training (cadence every 200 steps)")
        print(f"restart to first new step: {restart_time(tmp, args.steps):.2f} s (process start to step done)")
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
