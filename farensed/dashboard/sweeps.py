"""A sweep's page: its trials (ordinary jobs naming the sweep, see data.sweep_of), their curves laid
over each other, and a table ranked by the sweep's metric with each trial's settings.

Read tolerantly, so it works before and after the sweep record lands: a sweep record file (if any)
may name the metric, its direction and the winner; without one, the metric is the first answer
score the trials' evals carry (maximised), else the best validation loss (minimised).
"""

from __future__ import annotations

from pathlib import Path

from farensed.core.paths import Home
from farensed.dashboard import data, filecache, runpage
from farensed.results.compare import flatten

SWEEP_RECORDS = ("spool/sweeps", "sweeps")  # where a sweep's own record may live, under the home
SUMMARY_F1 = "answer_f1"  # the end-of-run answer score (best of the best and final adapters)
NOT_SETTINGS = ("name", "output", "trial.", "sweep")  # differ between trials by construction


METRIC_FIELDS = {"answers": "probe_f1", "val_loss": "val_loss"}  # sweep.json's metric -> the eval series


def sweep_record(home: Home, sweep_id: str) -> dict:
    """The daemon's sweep.json (core/sweep_table.py), its metric named as the eval series; else an older record."""
    table = filecache.json_file(home.root / "sweeps" / sweep_id / "sweep.json")
    if isinstance(table, dict):
        return {**table, "metric": METRIC_FIELDS.get(table.get("metric"), table.get("metric")), "trials": None}
    for folder in SWEEP_RECORDS:
        found = filecache.json_file(home.root / folder / f"{sweep_id}.json")
        if isinstance(found, dict):
            return found
    return {}


def is_pruned(job: dict, extras: dict) -> bool:
    reason = (job.get("reason") or "").lower()
    return "pruned" in (job.get("state"), job.get("outcome")) or bool(extras.get("pruned")) or "pruned" in reason


def _summary_f1(run: Path) -> float | None:
    means = ((filecache.json_file(run / "training_summary.json") or {}).get("scores") or {}).get("means") or {}
    vals = [means[t]["f1"] for t in ("best", "final") if isinstance(means.get(t), dict)]
    return max(vals) if vals else None


def trial_value(metric: str, evals: dict, run: Path | None) -> float | None:
    """A trial's figure for `metric`: its best eval value (lowest for a loss, else highest)."""
    if metric == SUMMARY_F1:
        return _summary_f1(run) if run else None
    vals = [v for v in evals.get(metric, []) if v is not None]
    if not vals:
        return None
    return min(vals) if "loss" in metric else max(vals)


def choose_metric(record: dict, trials: list[dict]) -> tuple[str, str]:
    """(metric, "maximize"|"minimize"): the record's, else the first score any trial has, else val loss."""
    if isinstance(record.get("metric"), str):
        m = record["metric"]
        return m, record.get("direction") or ("minimize" if "loss" in m else "maximize")
    keys = [k for t in trials for k in t["series"]["eval"] if k not in ("step", "val_loss")]
    if keys:
        return sorted(set(keys), key=lambda k: ("f1" not in k, k))[0], "maximize"
    if any(t["run"] and _summary_f1(t["run"]) is not None for t in trials):
        return SUMMARY_F1, "maximize"
    return "val_loss", "minimize"


def _trials(home: Home, sweep_id: str) -> list[dict]:
    jobs, _ = data.queue(home)
    out = []
    for j in (j for j in jobs["jobs"] if j["sweep"] == sweep_id):
        rec, extras = data.find(home, j["id"])
        run = Path(rec.output_dir) if rec.output_dir and Path(rec.output_dir).is_dir() else None
        out.append({"job": j, "extras": extras, "run": run,
                    "series": runpage.series(runpage.metrics_rows(run) if run else []),
                    "settings": flatten(data.job_settings(home, rec))})
    return out


def differing(trials: list[dict]) -> list[str]:
    keys = sorted(set().union(*(t["settings"] for t in trials))) if trials else []
    keys = [k for k in keys if not k.startswith(NOT_SETTINGS)]
    return [k for k in keys if len({repr(t["settings"].get(k)) for t in trials}) > 1]


def page(home: Home, sweep_id: str) -> dict | None:
    trials = _trials(home, sweep_id)
    record = sweep_record(home, sweep_id)
    if not trials and not record:
        return None
    metric, direction = choose_metric(record, trials)
    keys = differing(trials)
    rows = []
    for t in trials:
        j = t["job"]
        rows.append({"id": j["id"], "name": j["name"], "state": j["state"], "outcome": j["outcome"],
                     "reason": j["reason"], "step": j["step"], "total_steps": j["total_steps"],
                     "pruned": is_pruned(j, t["extras"]), "value": trial_value(metric, t["series"]["eval"], t["run"]),
                     "settings": {k: t["settings"].get(k) for k in keys}, "series": t["series"]})
    sign = -1 if direction == "maximize" else 1
    rows.sort(key=lambda r: (r["value"] is None, r["pruned"], sign * (r["value"] or 0)))
    winner = record.get("winner") if isinstance(record.get("winner"), str) else next(
        (r["id"] for r in rows if r["value"] is not None and not r["pruned"] and r["state"] == "done"), None)
    return {"id": sweep_id, "metric": metric, "direction": direction, "winner": winner, "setting_keys": keys,
            "trials": rows, "record": {k: v for k, v in record.items() if isinstance(v, (str, int, float, bool))}}
