"""What a run leaves in its output folder: metrics (JSONL while running, JSON + CSV),
adapter folders mlx-lm reads (adapters.safetensors + adapter_config.json), the summary."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import mlx.core as mx

from farensed.core.atomic import append_line, atomic_write_json, atomic_write_text, fsync_dir, fsync_file
from farensed.core.formats import (
    ADAPTER_CONFIG,
    ADAPTERS,
    METRICS_CSV,
    METRICS_JSON,
    METRICS_JSONL,
    AdapterConfig,
    MetricsRow,
    TrainingConfig,
)
from farensed.core.jobspec import JobSpec
from farensed.worker import disk


def append_metrics(out: Path, row: MetricsRow) -> None:
    append_line(out / METRICS_JSONL, row.model_dump_json())


def rewrite_metrics(out: Path, rows: list[MetricsRow]) -> None:
    """Reset the append-only log to exactly `rows` (on resume: the checkpoint's history)."""
    atomic_write_text(out / METRICS_JSONL, "".join(r.model_dump_json() + "\n" for r in rows))


def export_metrics(out: Path, rows: list[MetricsRow]) -> None:
    """training_metrics.json and .csv from the rows so far."""
    atomic_write_json(out / METRICS_JSON, [r.model_dump() for r in rows])
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(MetricsRow.model_fields))
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in r.model_dump().items()})
    atomic_write_text(out / METRICS_CSV, buf.getvalue())


def save_tensors(path: Path, arrays: dict[str, mx.array], before_write=lambda tmp: None) -> None:
    """mx.save_safetensors through a temp name, so readers never see half a file; a write the disk
    refuses leaves no temp file and raises NoSpace. `before_write(tmp)`: the fault hook's."""
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.safetensors")
    try:
        before_write(tmp)
        disk.save_safetensors(tmp, arrays)
        fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_adapter_folder(folder: Path, weights: dict[str, mx.array], adapter_config: AdapterConfig,
                         before_write=lambda tmp: None) -> None:
    """A folder `mlx_lm.load(model, adapter_path=folder)` and `mlx_lm.fuse` accept as is."""
    folder.mkdir(parents=True, exist_ok=True)
    save_tensors(folder / ADAPTERS, weights, before_write)
    atomic_write_json(folder / ADAPTER_CONFIG, adapter_config)


def training_config(spec: JobSpec, model_path: str, data_path: str, adapter_config: AdapterConfig) -> TrainingConfig:
    """training_config.json: the job as run, in the guide's terms plus mlx-lm's names."""
    t = spec.training
    return TrainingConfig(job=json.loads(spec.model_dump_json()), model=model_path, data=data_path,
                          batch_size=t.batch_size, grad_accumulation_steps=t.grad_accumulation,
                          effective_batch_size=t.effective_batch, learning_rate=t.learning_rate,
                          max_seq_length=t.max_seq_length, warmup_steps=t.warmup_steps,
                          mask_prompt=spec.mask_prompt, **adapter_config.model_dump())
