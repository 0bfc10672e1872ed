"""Examples/s of the guide's job at 1 and at 2 ranks, through the farensed worker started as the
daemon starts it (one process; mlx.launch with --distributed), and the speed-up.

    python -m bench.distributed.dist_scaling MODEL_DIR [--data FILE] [--backend nccl|ring] [--steps 30]
        [--skip 10] [--out FILE]

On a 2-GPU host use the NCCL backend (mlx.launch gives each rank its own GPU); with ring on a
CPU it only checks that the script runs. Throughput counts training steps after the first
`--skip` (MLX compiles its kernels in the first ones), from the runs' own metrics.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LAUNCH = "import sys; from mlx._distributed_utils.launch import main; sys.argv[0] = 'mlx.launch'; main()"

JOB = """schema_version = 1
name = "scaling"
model = "models/m"
data = "{data}"
[training]
batch_size = 4
grad_accumulation = 2
learning_rate = 2e-4
max_steps = {steps}
max_seq_length = 512
warmup_steps = 100
[lora]
rank = 8
scale = 16.0
num_layers = 16
[cadence]
checkpoint_every = 100000
checkpoint_every_minutes = 0
eval_every = 100000
val_batches = 1
log_every = 5
keep_checkpoints = 1
[evaluate]
examples = 0
"""


def home_with(model: Path, steps: int, data: Path) -> Path:
    home = Path(tempfile.mkdtemp(prefix="farensed-scaling-"))
    (home / "models").mkdir()
    (home / "models" / "m").symlink_to(model.resolve())
    for name in ("one", "two"):
        (home / "checkpoints" / name).mkdir(parents=True)
        (home / "checkpoints" / name / "job.toml").write_text(JOB.format(steps=steps, data=data.resolve()))
    return home


def run(cmd: list[str], log: Path, env: dict) -> float:
    t0 = time.time()
    with open(log, "wb") as out:
        rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env).returncode
    if rc:
        sys.exit(f"{' '.join(cmd)} exited {rc}; see {log}:\n" + log.read_text()[-3000:])
    return round(time.time() - t0, 1)


def examples_per_sec(run_dir: Path, skip: int, effective_batch: int = 8) -> tuple[float, int]:
    """Examples per second of training over the log windows after step `skip`."""
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r["kind"] == "train" and r["step"] > skip and r["steps_per_sec"]]
    steps, seconds, last = 0, 0.0, skip
    for r in rows:
        n = r["step"] - last
        steps, seconds, last = steps + n, seconds + n / r["steps_per_sec"], r["step"]
    return round(effective_batch * steps / seconds, 3), steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path)
    ap.add_argument("--backend", default="nccl", choices=["nccl", "ring"])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--skip", type=int, default=10)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--data", type=Path, default=REPO / "data", help="a data folder or one .jsonl (the real data)")
    args = ap.parse_args()
    home = home_with(args.model, args.steps, args.data)
    env = {**os.environ, "NCCL_NVLS_ENABLE": "0", "PYTHONPATH": f"{REPO}:{os.environ.get('PYTHONPATH', '')}"}
    py, worker = sys.executable, ["-m", "farensed.worker"]
    one, two = home / "checkpoints" / "one", home / "checkpoints" / "two"
    one_gpu = {**env, "CUDA_VISIBLE_DEVICES": "0"} if args.backend == "nccl" else env
    wall1 = run([py, *worker, str(one), "--home", str(home)], home / "one.log", one_gpu)
    port = ["--nccl-port", "12345"] if args.backend == "nccl" else ["--starting-port", "34567"]
    wall2 = run([py, "-c", LAUNCH, "-n", "2", "--backend", args.backend, *port, "--", py, *worker, str(two),
                 "--home", str(home), "--distributed", args.backend], home / "two.log", env)
    (e1, n1), (e2, n2) = examples_per_sec(one, args.skip), examples_per_sec(two, args.skip)
    result = {"backend": args.backend, "model": str(args.model), "steps_measured": [n1, n2],
              "examples_per_sec": {"1": e1, "2": e2}, "speedup": round(e2 / e1, 3), "wall_seconds": [wall1, wall2],
              "peak_memory_gb": [max((json.loads(x).get("peak_memory_gb") or 0)
                                     for x in (d / "metrics.jsonl").read_text().splitlines()) for d in (one, two)]}
    print(json.dumps(result), flush=True)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
