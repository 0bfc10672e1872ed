"""A sweep's Optuna study: stored in a journal file in the home (<home>/sweeps/<id>/study.log),
its sampler and pruner from the [sweep] table. Optuna is imported here only (never mlx)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from farensed.core.experiment_spec import Range, Sweep
from farensed.core.jobspec import JobSpec
from farensed.core.sweep_params import grid, is_int
from farensed.core.sweep_table import STUDY_LOG


def _optuna():
    import optuna  # a sweep's daemon pays for it; a daemon without sweeps never imports it

    optuna.logging.set_verbosity(logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def direction(sweep: Sweep) -> str:
    return "maximize" if sweep.metric == "answers" else "minimize"


def _sampler(optuna, sweep: Sweep):
    if sweep.method == "grid":
        class Grid(optuna.samplers.GridSampler):
            def after_trial(self, study, trial, state, values):
                """Optuna's would call study.stop() once the grid is run, which only works inside
                study.optimize; the daemon counts the trials itself (ask-and-tell)."""

        return Grid(grid(sweep), seed=sweep.seed)
    if sweep.method == "random":
        return optuna.samplers.RandomSampler(seed=sweep.seed)
    return optuna.samplers.TPESampler(seed=sweep.seed, n_startup_trials=min(4, max(1, (sweep.trials or 8) // 3)))


def _pruner(optuna, sweep: Sweep, spec: JobSpec):
    first = spec.sweep.prune_after or spec.cadence.eval_every  # steps are reported at evals
    if sweep.pruner == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=first, reduction_factor=2)
    if sweep.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=first, reduction_factor=2)
    if sweep.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=first - 1)
    return optuna.pruners.NopPruner()


def open_study(folder: Path, sweep_id: str, spec: JobSpec):
    """The sweep's study, created on first use and loaded as it is on disk after that."""
    optuna = _optuna()
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    folder.mkdir(parents=True, exist_ok=True)
    storage = JournalStorage(JournalFileBackend(str(folder / STUDY_LOG)))
    sweep = spec.sweep
    return optuna.create_study(study_name=sweep_id, storage=storage, direction=direction(sweep),
                               sampler=_sampler(optuna, sweep), pruner=_pruner(optuna, sweep, spec),
                               load_if_exists=True)


def suggest(trial, sweep: Sweep) -> dict:
    """The trial's value of every swept key, drawn by the study's sampler (stored in the study)."""
    out = {}
    for key, spec in sweep.params.items():
        if not isinstance(spec, Range):
            out[key] = trial.suggest_categorical(key, list(spec))
        elif is_int(key):
            out[key] = trial.suggest_int(key, int(spec.min), int(spec.max), step=int(spec.step or 1), log=spec.log)
        else:
            out[key] = trial.suggest_float(key, float(spec.min), float(spec.max), log=spec.log,
                                           step=None if spec.step is None else float(spec.step))
    return out


def live_trial(study, number: int):
    """A trial object to report to and ask whether to prune, also after a daemon restart."""
    optuna = _optuna()
    frozen = study.trials[number]
    return optuna.trial.Trial(study, frozen._trial_id)


def states():
    return _optuna().trial.TrialState
