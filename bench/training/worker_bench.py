"""Benchmark: the farensed worker, with and without a memory budget, against `mlx_lm lora` and
a bare compiled MLX loop on the same job, in one run.

Same model, data (one split, written once for both tools), batch, sequence length, LoRA layers
and BLAS (every process starts with farensed.host.blas.worker_env()). Prints side by side:

- farensed without a budget and with --budget-gb: examples/s, peak memory, the probe's cost,
  the checkpointing choice, step-downs and the distribution of splits;
- `mlx_lm lora` at the job's batch (unbudgeted), and at the largest batch whose peak fits the
  budget, with and without --grad-checkpoint (from the largest whose peak on mlx-lm's own widest
  batch fits, down until the run's own peak fits too);
- a bare compiled MLX loop over farensed's own batches;
- the ratios against the targets, checkpoint time as a share of training, restart to first step.

    .venv/bin/python -m bench.training.worker_bench                    # the demo model on data/, CPU
    .venv/bin/python -m bench.training.worker_bench --model M --data D.jsonl --budget-gb 12 --guide --steps 60
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
from statistics import median

from bench.training.report import print_report
from farensed.core.units import GIB
from farensed.host.blas import inspect, worker_env

ROOT = Path(__file__).resolve().parents[2]
GB = 1e9  # mlx_lm reports decimal GB
KEYS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
        "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]

# mlx_lm.lora.run() builds its own reporting callback; swap in one that prints its figures, and
# let its widest batch come first so the reported peak includes the worst case.
MLX_LM_DRIVER = """
import functools, json, sys
import mlx_lm.lora as lora
import mlx_lm.tuner.trainer as trainer
from mlx_lm.tuner.callbacks import TrainingCallback

class Report(TrainingCallback):
    def on_train_loss_report(self, info):
        print("REPORT " + json.dumps(info), flush=True)
def widest_first(dataset, batch_size, max_seq_length, loop=False, **kw):
    if not loop:
        yield from trainer.iterate_batches(dataset, batch_size, max_seq_length, loop=loop, **kw)
        return
    yield max(trainer.iterate_batches(dataset, batch_size, max_seq_length, **kw), key=lambda b: b[0].shape[1])
    yield from trainer.iterate_batches(dataset, batch_size, max_seq_length, loop=True, **kw)
lora.get_reporting_callbacks = lambda *a, **k: Report()
if sys.argv[1] == "--widest-first":
    lora.train = functools.partial(trainer.train, iterate_batches=widest_first)
sys.argv = ["mlx_lm.lora"] + sys.argv[2:]
lora.main()
"""


def job_toml(a, budget: float | None) -> str:
    memory = f"[memory]\nbudget_gb = {budget}\n" if budget else ""
    return f'''name = "bench"
model = "{a.model}"
data = "{a.data_dir}"
mask_prompt = {str(a.mask_prompt).lower()}
[training]
batch_size = {a.batch}
grad_accumulation = {a.accumulation}
learning_rate = {a.lr}
max_steps = {a.steps}
max_seq_length = {a.max_seq}
warmup_steps = 0
optimizer = "{a.optimizer}"
[lora]
num_layers = {a.lora_layers}
[cadence]
eval_every = 100000
checkpoint_every = 200
log_every = {a.log_every}
val_batches = 1
checkpoint_every_minutes = 0
[evaluate]
examples = 0
{memory}'''


def events(log: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines() if f'"event": "{name}"' in line]


def run_farensed(a, tmp: Path, name: str, budget: float | None = None) -> dict:
    run = tmp / name
    run.mkdir()
    (run / "job.toml").write_text(job_toml(a, budget))
    log = run / "worker.log"
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "farensed.worker", str(run), "--home", str(tmp)], env=worker_env(),
                   stdout=open(log, "w"), stderr=subprocess.STDOUT, check=True)
    wall = time.monotonic() - t0
    summary = json.loads((run / "training_summary.json").read_text())
    state = json.loads((run / "training_state.json").read_text())
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    trains = [r for r in rows if r["kind"] == "train"]
    steady = trains[1:] or trains  # the first window compiles
    rate = median(r["steps_per_sec"] for r in steady)  # a late first use of a shape compiles too
    measured = events(log, "memory_measured")
    return {"examples_per_sec": rate * a.batch * a.accumulation,
            "tokens_per_sec": summary["tokens"] / summary["seconds"],
            "peak_gib": max(r["peak_memory_gb"] for r in trains), "wall": wall, "train_seconds": summary["seconds"],
            "checkpoint_seconds": sum(e["seconds"] for e in events(log, "checkpoint_saved")),
            "checkpoints": len(events(log, "checkpoint_saved")), "downshifts": len(state["downshifts"]),
            "probe": measured[-1] if measured else None, "memory_model": state.get("memory_model"),
            "splits": [r.get("splits") for r in trains], "run": str(run),
            "seconds_per_step": 1 / rate}


def run_mlx_lm(a, tmp: Path, batch: int, checkpoint: bool, widest_first: bool = True) -> dict:
    out = tmp / f"mlx_lm_{batch}{'_gc' if checkpoint else ''}"
    cfg = tmp / "lora.yaml"
    cfg.write_text(json.dumps({"lora_parameters": {"rank": 8, "scale": 16.0, "dropout": 0.0, "keys": KEYS}}))
    accumulation = max(a.batch * a.accumulation // batch, 1)
    iters = a.steps * accumulation
    report = max(a.log_every * accumulation, 1)
    cmd = [sys.executable, "-c", MLX_LM_DRIVER, "--widest-first" if widest_first else "--as-is",
           "--model", str(a.model), "--train", "--data", str(a.data_dir),
           "--batch-size", str(batch), "--grad-accumulation-steps", str(accumulation), "--iters", str(iters),
           "--max-seq-length", str(a.max_seq), "--num-layers", str(a.lora_layers), "--learning-rate", str(a.lr),
           "--optimizer", a.optimizer, "--steps-per-report", str(report), "--steps-per-eval", "1000000",
           "--val-batches", "1", "--save-every", "1000000", "--adapter-path", str(out), "-c", str(cfg)]
    cmd += ["--mask-prompt"] * a.mask_prompt + ["--grad-checkpoint"] * checkpoint
    t0 = time.monotonic()
    proc = subprocess.run(cmd, env=worker_env(), capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        return {"error": lines[-1][:200], "tail": lines[-40:], "batch": batch, "checkpoint": checkpoint}
    reports = [json.loads(line[7:]) for line in proc.stdout.splitlines() if line.startswith("REPORT ")]
    steady = reports[1:] or reports
    its = median(r["iterations_per_second"] for r in steady)
    return {"examples_per_sec": its * batch, "tokens_per_sec": median(r["tokens_per_second"] for r in steady),
            "peak_gib": max(r["peak_memory"] for r in reports) * GB / GIB, "wall": time.monotonic() - t0,
            "batch": batch, "accumulation": accumulation, "checkpoint": checkpoint}


def references(a, tmp: Path, fit_batches: list[int]) -> dict:
    """The bare loop and mlx-lm's peaks, measured in one process on the unbudgeted job."""
    job = tmp / "unbudgeted" / "job.toml"
    cmd = [sys.executable, "-m", "bench.training.reference_loops", str(job), "--home", str(tmp),
           "--steps", str(a.steps), "--warmup", str(a.log_every), "--fit-batches", ",".join(map(str, fit_batches))]
    proc = subprocess.run(cmd, env=worker_env(), capture_output=True, text=True, cwd=ROOT)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"reference_loops.py failed: {proc.stderr[-2000:]}")
    return json.loads(line[7:])


def restart_time(a, tmp: Path) -> float:
    """SIGTERM a running worker, start it again: seconds from the new process's start to its first step."""
    run = tmp / "restart"
    run.mkdir()
    (run / "job.toml").write_text(job_toml(a, None))
    log = run / "worker.log"
    cmd = [sys.executable, "-m", "farensed.worker", str(run), "--home", str(tmp)]
    p = subprocess.Popen(cmd, env=worker_env(), stdout=open(log, "a"), stderr=subprocess.STDOUT)
    while not events(log, "step_report"):
        time.sleep(0.05)
    p.send_signal(signal.SIGTERM)
    p.wait()
    subprocess.run(cmd, env=worker_env(), stdout=open(log, "a"), stderr=subprocess.STDOUT, check=True)
    return events(log, "first_step_done")[-1]["seconds_since_process_start"]


def prepare_data(a, tmp: Path) -> Path:
    """A folder both tools read: the data as is, or a single .jsonl split as farensed splits it."""
    src = Path(a.data).resolve()
    if src.is_dir():
        return src
    from farensed.core.datasets import load_splits

    splits = load_splits(src, 0.1, 0)
    out = tmp / "data"
    out.mkdir()
    for name, exs in (("train", splits.train), ("valid", splits.valid)):
        (out / f"{name}.jsonl").write_text("".join(json.dumps(e.obj, ensure_ascii=False) + "\n" for e in exs))
    return out


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "farense-tiny")
    ap.add_argument("--data", default=str(ROOT / "data"), help="a folder with train/valid.jsonl, or one .jsonl")
    ap.add_argument("--budget-gb", type=float, help="also run farensed with this memory.budget_gb (GiB)")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--guide", action="store_true", help="the guide's job: 4 x 2, 512 tokens, LoRA on 16 layers,"
                    " mask_prompt, lr 2e-4, adamw")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--accumulation", type=int, default=1)
    ap.add_argument("--max-seq", type=int, default=256)
    ap.add_argument("--lora-layers", type=int, default=-1)
    ap.add_argument("--mask-prompt", action="store_true")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--optimizer", default="adam")
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--mlx-lm-batches", default="4,2,1", help="batch sizes tried for the mlx_lm configs that fit")
    ap.add_argument("--no-restart", action="store_true", help="skip the restart-to-first-step measurement")
    ap.add_argument("--farensed-only", action="store_true", help="farensed's runs alone: no references, no mlx_lm")
    ap.add_argument("--bare", action="store_true", help="with --farensed-only: the bare compiled loop too")
    ap.add_argument("--json", type=Path, help="also write every figure here (after each run)")
    ap.add_argument("--warmup-steps", type=int, default=0, help="a first, unreported farensed run of this many"
                    " steps: MLX compiles its kernels at first use (minutes on a fresh CUDA machine)")
    a = ap.parse_args(argv)
    if a.guide:
        a.accumulation, a.max_seq, a.lora_layers, a.mask_prompt, a.lr, a.optimizer = 2, 512, 16, True, 2e-4, "adamw"
        a.log_every = min(a.log_every, 10)
    layers = json.loads((a.model / "config.json").read_text())["num_hidden_layers"]
    a.lora_layers = min(a.lora_layers, layers) if a.lora_layers > 0 else a.lora_layers  # mlx_lm refuses more
    return a


def main() -> None:
    a = parse()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        a.data_dir = prepare_data(a, tmp)
        print(f"BLAS: {inspect().in_use}")
        print(f"job: {a.model.name} on {a.data} ({a.data_dir}), {a.steps} steps x {a.batch}x{a.accumulation},"
              f" max {a.max_seq} tokens, LoRA on {a.lora_layers} layers\n", flush=True)
        res = {"args": {k: str(v) for k, v in vars(a).items()}}
        for name, run in stages(a, tmp, res):
            t0 = time.monotonic()
            res[name] = run()
            print(f"[{time.strftime('%H:%M:%S')}] {name}: {time.monotonic() - t0:.0f} s", flush=True)
            if a.json:
                a.json.write_text(json.dumps(res, indent=2, default=str))
        print_report(a, res)
        shutil.rmtree(tmp, ignore_errors=True)


def stages(a, tmp: Path, res: dict):
    """(name, thunk) in order; each result is saved before the next starts (a cut-off run keeps them)."""
    if a.warmup_steps:
        warm = argparse.Namespace(**{**vars(a), "steps": a.warmup_steps})
        yield "warmup", lambda: {"wall": run_farensed(warm, tmp, "warmup")["wall"]}
    yield "farensed", lambda: run_farensed(a, tmp, "unbudgeted")
    if a.budget_gb:
        yield "farensed_budget", lambda: run_farensed(a, tmp, "budgeted", a.budget_gb)
    if a.farensed_only:
        if a.bare:
            yield "references", lambda: references(a, tmp, [])
        return
    fit_batches = [int(b) for b in a.mlx_lm_batches.split(",") if b] if a.budget_gb else []
    yield "references", lambda: references(a, tmp, fit_batches)
    yield "mlx_lm", lambda: run_mlx_lm(a, tmp, a.batch, False)
    for gc in (False, True):
        def fit(gc=gc):
            """From the largest batch whose probe peak fits, down until a run's own peak fits too."""
            peaks = res["references"]["fit"]["checkpoint" if gc else "no_checkpoint"]
            r, over = None, []
            for b in sorted((int(b) for b, p in peaks.items() if p <= a.budget_gb), reverse=True):
                r = run_mlx_lm(a, tmp, b, gc)
                if "error" not in r and r["peak_gib"] <= a.budget_gb:
                    break
                over.append({"batch": b, "peak_gib": r.get("peak_gib"), "examples_per_sec": r.get("examples_per_sec")})
            return r and {**r, "over_in_run": over}
        yield f"mlx_lm_fit_{'gc' if gc else 'plain'}", fit
    if not a.no_restart:
        yield "restart_seconds", lambda: restart_time(a, tmp)


if __name__ == "__main__":
    main()
