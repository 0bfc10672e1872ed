"""A job page's payload from its run folder, through the same readers as `report` and `compare`
(farensed.results), plus the metrics rows as raw JSON so fields a newer worker adds (per-eval
answer scores, `probe_f1`...) are charted without a change here."""

from __future__ import annotations

import json
import math
from pathlib import Path

from farensed.core.errors import FarensedError
from farensed.core.formats import METRICS_JSON, METRICS_JSONL, SUMMARY
from farensed.core.paths import Home
from farensed.core.spool.records import JobRecord
from farensed.dashboard import data, filecache
from farensed.results.answer_scores import run_scores
from farensed.results.compare import figure_rows as compare_figures
from farensed.results.compare import flatten, score_rows, settings_that_differ
from farensed.results.rundata import RunData, load_run
from farensed.results.summary_table import rows as figure_rows

TRAIN_FIELDS = ("train_loss", "learning_rate", "tokens_per_sec", "active_memory_gb", "peak_memory_gb")
SCORE_WORDS = ("f1", "exact", "score", "accuracy")  # an eval row's answer-score fields, whatever their prefix


def _num(v):
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def metrics_rows(run: Path) -> list[dict]:
    """metrics.jsonl while running, else training_metrics.json, as raw dicts."""
    rows = filecache.jsonl_rows(run / METRICS_JSONL)
    if rows:
        return rows
    final = filecache.json_file(run / METRICS_JSON)
    return [r for r in final if isinstance(r, dict)] if isinstance(final, list) else []


def score_keys(evals: list[dict]) -> list[str]:
    keys = {k for r in evals for k, v in r.items() if _num(v) is not None and any(w in k for w in SCORE_WORDS)}
    return sorted(keys, key=lambda k: ("f1" not in k, k))


def series(rows: list[dict]) -> dict:
    """{"train": {"step": [...], "train_loss": [...], ...}, "eval": {"step": [...], "val_loss": [...], ...}}."""
    trains = [r for r in rows if r.get("kind") == "train"]
    evals = [r for r in rows if r.get("kind") == "eval"]
    out = {}
    for name, rs, keys in (("train", trains, TRAIN_FIELDS), ("eval", evals, ("val_loss", *score_keys(evals)))):
        out[name] = {"step": [r.get("step") for r in rs]} | {k: [_num(r.get(k)) for r in rs] for k in keys}
    return out


def _answers(run: RunData) -> list[dict]:
    return [r.model_dump(include={"kind", "question", "reference", "answers", "source"}) for r in run.answers]


def _settings(home: Home, rec: JobRecord, run: RunData | None) -> dict:
    """Every setting with its default when the job file validates, else the file as written."""
    if run is not None and run.spec is not None:
        return flatten(run.spec.model_dump())
    return flatten(data.job_settings(home, rec))


def _load(rec: JobRecord) -> RunData | None:
    if not rec.output_dir or not Path(rec.output_dir).is_dir():
        return None
    try:
        return load_run(Path(rec.output_dir))
    except FarensedError:
        return None


def _run_part(run: RunData) -> dict:
    st = run.state
    best_step = st.best_step if st else (run.summary.best_step if run.summary else None)
    scores = run_scores(run)
    summary = filecache.json_file(run.run_dir / SUMMARY) or {}
    return {
        "series": series(metrics_rows(run.run_dir)),
        "checkpoints": [{"step": s, "name": n, "best": s == best_step} for s, n in run.checkpoints],
        "saved_steps": run.saved_steps, "restart_steps": run.restart_steps,
        "best": {"step": best_step, "val_loss": st.best_val_loss if st else None},
        "downshifts": [d.model_dump() for d in st.downshifts] if st else [],
        "figures": figure_rows(run),
        "answers": _answers(run),
        "scores": scores.model_dump() if scores else None,
        "prompt_answers": summary.get("answers") or [],
        "log": data.log_lines(run.run_dir),
    }


EMPTY_RUN = {"series": series([]), "checkpoints": [], "saved_steps": [], "restart_steps": [],
             "best": {"step": None, "val_loss": None}, "downshifts": [], "figures": [], "answers": [],
             "scores": None, "prompt_answers": [], "log": []}


def page(home: Home, rec: JobRecord, view: dict) -> dict:
    """The job page: its view, record history, settings, and what its run folder holds so far."""
    run = _load(rec)
    history = [h.model_dump() for h in rec.history]
    base = {"job": view | {"file_name": rec.file_name, "paused_by": rec.paused_by, "exit_code": rec.exit_code},
            "history": history, "run_dir": rec.output_dir, "settings": _settings(home, rec, run)}
    return base | (_run_part(run) if run is not None else json.loads(json.dumps(EMPTY_RUN)))


def compare(home: Home, recs: list[JobRecord]) -> dict:
    """Two (or more) jobs side by side: figures, answer scores, the settings that differ, curves."""
    runs = [_load(r) for r in recs]
    have = [r for r in runs if r is not None]
    out = {"jobs": [{"id": r.id, "name": r.name, "state": r.state} for r in recs],
           "series": [series(metrics_rows(r.run_dir)) if r else series([]) for r in runs]}
    if len(have) < len(runs):
        missing = [r.id for r, run in zip(recs, runs) if run is None]
        return out | {"figures": [], "scores": [], "differ": [], "missing": missing}
    return out | {"figures": compare_figures(runs), "scores": score_rows(runs),
                  "differ": settings_that_differ(runs), "missing": []}
