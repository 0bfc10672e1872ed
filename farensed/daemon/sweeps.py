"""advance_sweeps: each sweep's trials are ordinary jobs, made, watched and told to its study here.

Every tick, for each sweep: tell the study how its finished trials ended; report the running
trial's new evals to the pruner (and stop it at a checkpoint when the pruner says so); make the
next trial when none is waiting; end the sweep, naming its winner, when all have run.

Crash safety (a SIGKILL at any moment): the study's journal is the truth. A trial is asked and
given its job id (a user attribute) before its job file is written; the job file is written
into queued/ before its record. After a restart, a trial with a job id but no job gets one
(the same id), a job file without a record is adopted by recovery and joined to its sweep
here, and a trial asked but never given a job id is marked failed (it never ran). So no trial
is lost and none runs twice.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from farensed.core import sweep_table, tomlwrite
from farensed.core.atomic import atomic_write_text
from farensed.core.formats import METRICS_JSONL, MetricsRow
from farensed.core.jobfile import load_job, read_job_text
from farensed.core.spool.folders import find_job_file
from farensed.core.spool.records import JobRecord, taken_ids, unique_id
from farensed.core.states import FINISHED
from farensed.core.sweep_params import trial_count, with_values
from farensed.core.sweep_table import SweepTable, TrialRow
from farensed.daemon import study as studies
from farensed.daemon.guard import for_job
from farensed.daemon.worker_process import ask_stop

if TYPE_CHECKING:
    from farensed.daemon.loop import Daemon

JOB_ID = "job_id"  # the user attribute that ties an Optuna trial to its job


class Sweeps:
    """The daemon's open studies and what it last reported of each running trial."""

    def __init__(self):
        self.studies: dict[str, object] = {}
        self.specs: dict[str, object] = {}
        self.reported: dict[str, int] = {}  # trial job id -> last step reported to the pruner
        self.seen: dict[str, tuple] = {}  # trial job id -> metrics.jsonl (size, mtime)
        self.evals: dict[Path, tuple[tuple, list[MetricsRow]]] = {}  # metrics.jsonl -> (size, mtime), its evals
        self.tables: dict[str, dict] = {}  # sweep id -> the sweep.json last written (without updated_at)


def advance_sweeps(d: Daemon) -> None:
    for rec in [r for r in d.records.values() if r.kind == "sweep"]:
        if rec.state in ("queued", "running") or (rec.state == "cancelled" and _unfinished(d, rec.id)):
            with for_job(d, rec.id, "advance_sweeps", f"{_folder(d, rec.id)}: advancing the sweep"):
                advance(d, rec)


def _folder(d: Daemon, sweep_id: str) -> Path:
    return sweep_table.sweep_dir(d.home, sweep_id)


def _unfinished(d: Daemon, sweep_id: str) -> list[JobRecord]:
    return [r for r in d.records.values() if r.sweep == sweep_id and r.state not in FINISHED]


def _open(d: Daemon, rec: JobRecord):
    s = d.sweeps
    if rec.id not in s.studies:
        job_file = find_job_file(d.dirs, rec.id)
        spec = load_job(job_file)
        s.specs[rec.id] = (spec, read_job_text(job_file))
        s.studies[rec.id] = studies.open_study(_folder(d, rec.id), rec.id, spec)
    return s.studies[rec.id], *s.specs[rec.id]


def advance(d: Daemon, rec: JobRecord) -> None:
    study, spec, text = _open(d, rec)
    trials = _reconcile(d, rec, study, spec, text)
    if rec.state == "cancelled":
        _cancel_trials(d, rec)
    else:
        _watch_running(d, study, spec, trials)
        _next_or_end(d, rec, study, spec, text)
    _write_table(d, rec, study, spec)


def _reconcile(d: Daemon, rec: JobRecord, study, spec, text: str) -> list:
    """Join the study and the jobs: tell finished trials, make lost jobs, fail trials that never got one."""
    states = studies.states()
    for t in study.get_trials(deepcopy=False):
        job_id = t.user_attrs.get(JOB_ID)
        if t.state != states.RUNNING:
            continue
        if job_id is None:  # asked, then the daemon died before the trial had a job: it never ran
            study.tell(t.number, state=states.FAIL)
            d.log.warning("sweep_trial_abandoned", job_id=rec.id, trial=t.number)
            continue
        job = d.records.get(job_id)
        if job is None:
            _make_job(d, rec, spec, text, t.number, job_id, dict(t.params))
        elif job.sweep != rec.id:  # adopted by recovery without its sweep
            d.save(job, sweep=rec.id)
        elif job.state in FINISHED:
            _tell(d, study, t.number, job)
    return study.get_trials(deepcopy=False)


def _tell(d: Daemon, study, number: int, job: JobRecord) -> None:
    states = studies.states()
    if job.state == "done" and job.outcome == "pruned":
        study.tell(number, state=states.PRUNED)
    elif job.state == "done" and (value := trial_value(d, job, study.direction.name.lower())) is not None:
        study.tell(number, value[0])
    else:
        study.tell(number, state=states.FAIL)
    d.log.info("sweep_trial_told", job_id=job.sweep, trial=number, trial_job=job.id, state=job.state,
               outcome=job.outcome)


def eval_rows(run_dir: Path, cache: dict | None = None) -> list[MetricsRow]:
    """The eval rows of a run's metrics.jsonl; with `cache`, read again only when the file changed
    (the daemon asks every tick for every trial of a sweep)."""
    path = run_dir / METRICS_JSONL
    try:
        st = path.stat()
    except OSError:
        return []
    sig = (st.st_size, st.st_mtime_ns)
    if cache is not None and (hit := cache.get(path)) and hit[0] == sig:
        return hit[1]
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = MetricsRow.model_validate_json(line)
        except ValueError:
            continue  # a torn last line while the worker writes
        if row.kind == "eval":
            rows.append(row)
    if cache is not None:
        cache[path] = (sig, rows)
    return rows


def _metric(row: MetricsRow, direction: str) -> float | None:
    return row.probe_f1 if direction == "maximize" else row.val_loss


def trial_value(d: Daemon, job: JobRecord, direction: str) -> tuple[float, int] | None:
    """(value, step) of the trial's best eval: highest probe F1 or lowest validation loss."""
    rows = [(v, r.step) for r in eval_rows(Path(job.output_dir or ""), d.sweeps.evals)
            if (v := _metric(r, direction)) is not None]
    if not rows:
        return None
    sign = -1 if direction == "maximize" else 1
    return min(rows, key=lambda vs: (sign * vs[0], vs[1]))


def _make_job(d: Daemon, rec: JobRecord, spec, text: str, number: int, job_id: str, params: dict) -> None:
    """The trial's job file (queued/, atomically) and then its record."""
    import tomllib

    raw = with_values(tomllib.loads(text), params)
    raw["name"] = f"{spec.name} t{number + 1}"
    shown = ", ".join(f"{k} = {v!r}" for k, v in params.items())
    body = tomlwrite.dumps(raw, f"trial {number + 1} of sweep {rec.id}: {shown}")
    path = d.dirs.job_file("queued", job_id)
    atomic_write_text(path, body)
    trial = load_job(path)  # the trial is a job like any other: its file must read as one
    now = time.time()
    seq = max((r.seq for r in d.records.values()), default=0) + 1
    d.admit(JobRecord(id=job_id, file_name=path.name, name=trial.name, state="queued", since=now, seq=seq,
                      priority=rec.priority, submitted_at=now, output_dir=str(d.home.checkpoints / job_id),
                      max_restarts=trial.max_restarts, model_local=rec.model_local, sweep=rec.id,
                      reason=f"trial {number + 1} of sweep {rec.id}: {shown}"))


def _watch_running(d: Daemon, study, spec, trials) -> None:
    """Report the running trial's new evals; stop it at a checkpoint when the pruner says so."""
    running = {t.user_attrs.get(JOB_ID): t for t in trials if t.state == studies.states().RUNNING}
    w = d.worker
    if w is None or w.job_id not in running:
        return
    job = d.records[w.job_id]
    if job.stop_for is not None:
        return
    path = Path(job.output_dir) / METRICS_JSONL
    try:
        st = path.stat()
    except FileNotFoundError:
        return
    if d.sweeps.seen.get(job.id) == (st.st_size, st.st_mtime_ns):
        return
    d.sweeps.seen[job.id] = (st.st_size, st.st_mtime_ns)
    trial = studies.live_trial(study, running[job.id].number)
    last = d.sweeps.reported.get(job.id, max(running[job.id].intermediate_values, default=0))
    for row in eval_rows(Path(job.output_dir), d.sweeps.evals):
        value = _metric(row, study.direction.name.lower())
        if row.step <= last or row.step == 0 or value is None:
            continue
        trial.report(value, row.step)
        d.sweeps.reported[job.id] = last = row.step
        if trial.should_prune():
            name = "probe F1" if spec.sweep.metric == "answers" else "validation loss"
            reason = f"pruned by sweep {job.sweep} ({spec.sweep.pruner}) at step {row.step}: {name} {value:.4g}"
            d.log.info("sweep_trial_pruned", job_id=job.sweep, trial_job=job.id, step=row.step, value=value)
            d.save(job, stop_for="prune", reason=reason)
            ask_stop(w, time.monotonic())
            return


def _next_or_end(d: Daemon, rec: JobRecord, study, spec, text: str) -> None:
    trials = [t for t in study.get_trials(deepcopy=False) if JOB_ID in t.user_attrs]
    total = trial_count(spec.sweep)
    waiting = [t for t in trials if t.state == studies.states().RUNNING]
    if waiting:
        return
    if len(trials) < total:
        if rec.state == "queued":
            rec = d.move(rec, "running", f"sweep of {total} trials ({spec.sweep.method})")
        trial = study.ask()
        params = studies.suggest(trial, spec.sweep)
        taken = taken_ids(d.records, d.home.checkpoints, d.dirs.state("queued").glob("*.toml"))
        job_id = unique_id(f"{rec.id}-t{trial.number + 1}", taken)
        trial.set_user_attr(JOB_ID, job_id)
        _make_job(d, rec, spec, text, trial.number, job_id, params)
        d.log.info("sweep_trial_started", job_id=rec.id, trial=trial.number, trial_job=job_id, params=params)
        return
    table = _table(d, rec, study, spec)
    win = next((t for t in table.ranked() if t.state == "done"), None)
    reason = (f"winner {win.job_id}: {_shown_value(spec, win.value)} with "
              + ", ".join(f"{k} = {v!r}" for k, v in win.params.items())) if win else "no trial finished"
    if rec.state == "queued":
        rec = d.move(rec, "running", None)
    d.move(rec, "done", reason)
    d.log.info("sweep_done", job_id=rec.id, winner=win.job_id if win else None, trials=len(trials))


def _shown_value(spec, value: float) -> str:
    return f"probe F1 {value:.3f}" if spec.sweep.metric == "answers" else f"validation loss {value:.4f}"


def _cancel_trials(d: Daemon, rec: JobRecord) -> None:
    """A cancelled sweep cancels its trials that have not finished (the running one at a checkpoint)."""
    from farensed.daemon.control import stop_running

    for job in _unfinished(d, rec.id):
        if job.state == "running":
            if job.stop_for is None:
                stop_running(d, job, "cancel")
        else:
            d.move(job, "cancelled", f"sweep {rec.id} cancelled")


def _table(d: Daemon, rec: JobRecord, study, spec) -> SweepTable:
    states, direction = studies.states(), study.direction.name.lower()
    rows = []
    for t in study.get_trials(deepcopy=False):
        job = d.records.get(t.user_attrs.get(JOB_ID, ""))
        if job is None:
            continue
        state = "pruned" if job.outcome == "pruned" else job.state
        best = trial_value(d, job, direction)
        rows.append(TrialRow(number=t.number, job_id=job.id, params=dict(t.params), state=state,
                             value=t.value if t.state == states.COMPLETE else best[0] if best else None,
                             step=best[1] if best else None,
                             last_step=max(t.intermediate_values, default=None), reason=job.reason))
    table = SweepTable(id=rec.id, name=spec.name, method=spec.sweep.method, metric=spec.sweep.metric,
                       direction=direction, pruner=spec.sweep.pruner, trials_total=trial_count(spec.sweep),
                       trials=rows, updated_at=time.time())
    win = next((t for t in table.ranked() if t.state == "done"), None)
    return table.model_copy(update={"winner": win.job_id if win else None})


def _write_table(d: Daemon, rec: JobRecord, study, spec) -> None:
    table = _table(d, rec, study, spec)
    now = table.model_dump(exclude={"updated_at"})
    if d.sweeps.tables.get(rec.id) != now:  # written when it changed (and once per daemon start)
        sweep_table.write(d.home, table)
        d.sweeps.tables[rec.id] = now
        d.dirty = True
