"""One run of a job in its output folder: load, resume, train, write every output.

`python -m farensed.worker RUN_DIR` is the entry point (see __main__.py); RUN_DIR holds
job.toml, and everything the run writes lands beside it.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from types import SimpleNamespace

import mlx.core as mx
import psutil
from mlx.utils import tree_flatten, tree_map_with_path
from mlx_lm.tuner.datasets import create_dataset

from farensed.core import data_checks
from farensed.core.atomic import atomic_write_json
from farensed.core.datasets import Example, load_splits
from farensed.core.exitcodes import EXIT_STOPPED
from farensed.core.formats import (
    ADAPTERS,
    JOB_FILE,
    OPTIMIZER,
    PROGRESS,
    SUMMARY,
    TRAINING_STATE,
    CheckpointState,
    LiveProgress,
    MetricsRow,
    TrainingState,
)
from farensed.core.jobfile import load_job, parse_job
from farensed.core.jobspec import JobSpec
from farensed.core.paths import Home
from farensed.core.run_folder import read_training_state
from farensed.core.units import GIB
from farensed.memory import plan as memplan
from farensed.scoring.questions import held_out, scored_questions
from farensed.worker import batching, checkpoint, evaluation, memory, outputs, tensorboard_events
from farensed.worker import eta as worker_eta
from farensed.worker.answer_probe import AnswerProbe
from farensed.worker.distributed import Solo
from farensed.worker.faults import Faults
from farensed.worker.first_step import FirstStepClock
from farensed.worker.model import BadJob, adapter_weights, apply_lora, load_base, model_path
from farensed.worker.step import make_optimizer
from farensed.worker.trainer import StopRequested, Trainer


def tokenize_split(examples: list[Example], tokenizer, spec: JobSpec) -> batching.Tokenized | None:
    if not examples:
        return None
    ds = create_dataset([e.obj for e in examples], tokenizer, SimpleNamespace(mask_prompt=spec.mask_prompt))
    return batching.tokenize([ds.process(ds[i]) for i in range(len(ds))], spec.training.max_seq_length)


def initial_state(run_dir: Path, spec: JobSpec, log) -> TrainingState:
    """training_state.json as left by the last worker (or the daemon), else a fresh one (a torn one set aside)."""
    return read_training_state(run_dir, spec, log)


class Run:
    """Ties the trainer to the run folder: resume, cadences, progress, checkpoints, outputs."""

    def __init__(self, run_dir: Path, home: Home, log, compile: bool = True, dist=None):
        self.dir, self.home, self.log = run_dir, home, log
        self.dist = dist or Solo()  # a data-parallel job's rank; only rank 0 writes in the run folder
        self.spec, self.state = self._read_job_and_state()
        self.last_checkpoint = self.state.checkpoint
        self.compile = compile

    def _read_job_and_state(self) -> tuple[JobSpec, TrainingState]:
        """Rank 0 reads job.toml and training_state.json; other ranks (other hosts) get them from it."""
        path = self.dir / JOB_FILE

        def read() -> dict:
            spec = load_job(path)  # every problem with its line
            state = initial_state(self.dir, spec, self.log).model_dump(mode="json")
            return {"job": path.read_text(encoding="utf-8"), "state": state}
        got = self.dist.from_root(read)
        return parse_job(got["job"], str(path)), TrainingState.model_validate(got["state"])

    # --- set-up -------------------------------------------------------------------------
    def load(self) -> None:
        spec = self.spec
        self.write_progress_loading()
        self.scalars = tensorboard_events.for_run(self.dir, spec)  # [report] tensorboard: event files too
        self.model, self.tokenizer = load_base(spec, self.home)
        self.adapter_config = apply_lora(self.model, spec)
        self.initial_adapters = adapter_weights(self.model)  # change nothing: the base model's answers
        splits = load_splits(self.home.resolve(spec.data), spec.valid_fraction, spec.training.seed)
        self.splits = splits
        train = tokenize_split(splits.train, self.tokenizer, spec)
        data_checks.require_targets(self.home.resolve(spec.data), int(train.n_targets.sum()) if train else 0,
                                    spec.training.max_seq_length, spec.mask_prompt)  # exit EXIT_BAD_JOB, not done
        valid = tokenize_split(splits.valid, self.tokenizer, spec)
        self._note_data(train, valid)
        self.optimizer = make_optimizer(spec.training.optimizer, spec.training.learning_rate,
                                        spec.training.weight_decay)
        self.optimizer.init(self.model.trainable_parameters())
        key = memory.settings_key(spec, self.model_path, train.fingerprint(), self.compile)
        self.trainer = Trainer(spec, self.model, self.optimizer, train, valid, memory.unmeasured(spec, key),
                               Faults(self.dir, rank=self.dist.rank), self.log, self.compile, dist=self.dist)
        self._plan_probe(splits)
        self.dist.check_same("the tokenized training data (data, max_seq_length, mask_prompt, tokenizer)",
                             self.trainer.fingerprint)
        if spec.memory.budget_gb:
            gpu = mx.default_device() == mx.gpu
            limit = memplan.mlx_limit_bytes(int(spec.memory.budget_gb * memplan.GIB), gpu)
            mx.set_memory_limit(limit)
            self.log.info("memory_limit", budget_gb=spec.memory.budget_gb, mlx_limit_gb=round(limit / memplan.GIB, 3),
                          cuda_graphs=os.environ.get("MLX_USE_CUDA_GRAPHS", "default"))

    def _plan_probe(self, splits) -> None:
        """The questions answered at every eval and the rule for best, in training_state.json."""
        for warning in self.spec.evaluate.warnings:
            self.log.warning("job_file_retired_key", detail=warning)
        self.probe = AnswerProbe(self.spec, self.home, splits, self.tokenizer)
        held = held_out(self.spec, self.home, splits)
        self.scored_questions = len(scored_questions(self.spec, held)) + len(self.spec.generate.prompts)
        plan = evaluation.probe_plan(self, self.probe)
        self.state = self.state.model_copy(update={"probe": plan})
        self.log.info("probe_planned", select=plan.select, rule=plan.why, patience=plan.patience,
                      sets={s.field: f"{s.questions} {s.name}" for s in plan.sets})

    def _note_data(self, train, valid) -> None:
        truncated = train.truncated + (valid.truncated if valid else 0)
        self.truncated = truncated
        if truncated:
            self.log.warning("sequences_truncated", count=truncated, max_seq_length=self.spec.training.max_seq_length,
                             longest=max(train.longest, valid.longest if valid else 0))
        if valid is None:
            self.log.warning("no_validation_set", detail="training without eval")
        self.log.info("data_loaded", train=len(train.tokens), valid=len(valid.tokens) if valid else 0,
                      source=self.splits.source)

    def resume(self) -> None:
        """Continue from the newest checkpoint that verifies; a fresh start if there is none.
        Rank 0 reads it; every rank then holds rank 0's adapters, optimizer state and cursor."""
        found = self.dist.from_root(self._load_newest)
        self.dist.sync_from_root(self.model, self.optimizer)
        if found is None:
            self.trainer.recompile()  # other ranks: the optimizer state now holds rank 0's values
            if self.dist.is_root:
                outputs.rewrite_metrics(self.dir, [])
            self.settle_memory(None)
            return
        cs = CheckpointState.model_validate(found["state"])
        rows = [MetricsRow.model_validate_json(line) for line in found["metrics"].splitlines() if line]
        self.trainer.resume(cs, rows)
        if self.dist.is_root:
            outputs.rewrite_metrics(self.dir, rows)
        self.last_checkpoint = found["name"]
        self.settle_memory(cs)
        self.log.info("resumed", checkpoint=found["name"], step=cs.progress.step, micro_batch=self.trainer.narrowest,
                      grad_checkpoint=self.trainer.memory.grad_checkpoint)

    def _load_newest(self) -> dict | None:
        """Load the newest valid checkpoint's tensors into the model and optimizer; its name, state, metrics."""
        checkpoint.clean_temp(self.dir)
        ck = checkpoint.newest_valid(self.dir, self.log)
        if ck is None:
            return None
        cs, tensors, metrics_text = checkpoint.load_state(ck)
        if cs.data_fingerprint not in (None, self.trainer.fingerprint):
            raise BadJob(f"{self.home.resolve(self.spec.data)}: the training data (or max_seq_length, mask_prompt,"
                         f" the tokenizer) changed since {ck.name}; resuming would train on the wrong examples."
                         f" Put the data back, or submit it as a new job")
        self.model.load_weights(list(tensors[ADAPTERS].items()), strict=False)
        saved = tensors[OPTIMIZER]
        self.optimizer.state = tree_map_with_path(lambda path, v: saved.get(path, v), self.optimizer.state)
        return {"name": ck.name, "state": cs.model_dump(mode="json"), "metrics": metrics_text}

    def settle_memory(self, cs: CheckpointState | None) -> None:
        """The memory model: the saved one when the settings are the same (so a resume splits as
        before), else measured (with a budget, by rank 0); then the daemon's records of deaths folded in."""
        tr = self.trainer
        saved = [m for m in (self.state.memory_model, cs.memory_model if cs else None) if m and m.key == tr.memory.key]
        model = saved[0] if saved else tr.memory
        if not saved and model.budget_bytes and self.dist.is_root:
            self.write_progress("measuring_memory")
            model = memory.establish(tr, model, self.log)
        tr.set_memory(model)
        tr.agree_memory()
        tr.downshifts = list(self.state.downshifts)
        model = memplan.fold_deaths(tr.memory, tr.downshifts, tr.step_lengths(0))
        tr.set_memory(memory.ensure_measured(tr, model))
        tr.agree_memory()
        self.write_state("running")  # a restart before the first checkpoint reuses what was measured

    @property
    def scoring_pending(self) -> bool:
        """Training ended and its outputs are written: a (re)start goes straight to scoring."""
        st = self.state
        return (self.dir / SUMMARY).is_file() and (st.status == "scoring" or st.scoring is not None)

    def note_loaded(self) -> None:
        """Count this process's start-up (imports, loading, tokenizing, resume) as loading time."""
        took = time.time() - psutil.Process().create_time()
        self.state = self.state.model_copy(update={"load_seconds": round(self.state.load_seconds + took, 3)})
        self.log.info("loaded", seconds=round(took, 3))

    # --- the loop ----------------------------------------------------------------------
    def train(self) -> None:
        tr, cad = self.trainer, self.spec.cadence
        self.write_state("running")
        start, base = time.monotonic(), tr.p.elapsed
        last_ckpt = time.monotonic()
        clock = FirstStepClock()
        if tr.p.step == 0 or tr.p.eval_pending:  # step 0: the base model's loss, where the curves start
            self.eval_now()
        while tr.p.step < tr.total and not self.stopped_early:
            if self.dist.stopping(tr.stop_requested):
                self.save_checkpoint()
                self.dist.barrier()
                raise StopRequested(f"stopped by signal at step {tr.p.step}")
            start += self._timed_step(clock)
            tr.p.elapsed = base + time.monotonic() - start
            s = tr.p.step
            if s % cad.log_every == 0 or s == tr.total:
                self.record(tr.train_row())
            if s % cad.eval_every == 0 or s == tr.total:
                self.eval_now()
            minutes = cad.checkpoint_every_minutes and time.monotonic() - last_ckpt >= 60 * cad.checkpoint_every_minutes
            if s % cad.checkpoint_every == 0 or s == tr.total or minutes or self.stopped_early:
                self.save_checkpoint()
                last_ckpt = time.monotonic()
        if tr.p.eval_pending:  # the final evaluation was cut short by a stop: resume redoes it
            self.save_checkpoint()
            self.dist.barrier()
            raise StopRequested(f"stopped by signal during the evaluation at step {tr.p.step}")
        tr.p.elapsed -= self._count_compile(clock.settle())  # a short process: known only now
        if self.stopped_early:
            self.log.info("stopped_early", step=tr.p.step, total_steps=tr.total, best_step=tr.p.best_step,
                          reason=self.stopped_early)

    @property
    def stopped_early(self) -> str | None:
        """[evaluate] patience spent: why training ends here (kept in the checkpoint's progress)."""
        return evaluation.early_stop(self)

    def _timed_step(self, clock: FirstStepClock) -> float:
        """One step; returns the seconds to take out of the training time (the compile, once known)."""
        first = clock.first
        if first and self.compile:
            self.write_progress("compiling")  # status and watch say why the first step is slow
        t0 = time.monotonic()
        self.trainer.train_step()
        excess = clock.add(time.monotonic() - t0)
        if first:  # how long a (re)start costs
            self.log.info("first_step_done", step=self.trainer.p.step, seconds=round(time.monotonic() - t0, 3),
                          seconds_since_process_start=round(time.time() - psutil.Process().create_time(), 3))
            self.write_progress()
        return self._count_compile(excess)

    def _count_compile(self, excess: float | None) -> float:
        if excess is None:
            return 0.0
        total = round(self.state.compile_seconds + excess, 3)
        self.state = self.state.model_copy(update={"compile_seconds": total})
        self.log.info("compile_measured", seconds=round(excess, 3), compiled=self.compile)
        return excess

    def record(self, row: MetricsRow) -> None:
        self.trainer.p.metrics.append(row)
        if not self.dist.is_root:
            return
        if self.state.estimate is None and row.kind == "train":  # the first timed steps: the job's figures
            self.state = self.state.model_copy(update={"estimate": worker_eta.at_start(self, row)})
            self.write_state("running")
        outputs.append_metrics(self.dir, row)
        self.scalars.add(row)
        self.log.info("step_report", **{k: v for k, v in row.model_dump().items() if v is not None})
        self.write_progress()

    def eval_now(self) -> None:
        evaluation.evaluate(self)

    def save_checkpoint(self) -> None:
        if not self.dist.is_root:
            return
        tr, t0 = self.trainer, time.monotonic()
        tensors = {ADAPTERS: adapter_weights(self.model), OPTIMIZER: dict(tree_flatten(self.optimizer.state))}
        path = checkpoint.save(self.dir, tr.epoch, tr.checkpoint_state(), tensors, tr.p.metrics,
                               midway=tr.faults.in_checkpoint,
                               seen_free=lambda free: tr.faults.free_bytes(tr.p.step, free))
        self.last_checkpoint = path.name
        self.write_state("running")
        best = ({checkpoint.name_for(e, tr.p.best_step) for e in range(tr.p.cursor.epoch + 1)}
                if tr.p.best_step else set())
        removed = checkpoint.prune(self.dir, self.spec.cadence.keep_checkpoints, best)
        outputs.export_metrics(self.dir, tr.p.metrics)
        self.log.info("checkpoint_saved", step=tr.p.step, checkpoint=path.name,
                      seconds=round(time.monotonic() - t0, 3), pruned=removed or None)
        self.write_progress()

    # --- state files -------------------------------------------------------------------
    def write_state(self, status: str, reason: str | None = None) -> None:
        if not self.dist.is_root:
            return
        tr = getattr(self, "trainer", None)
        upd = {"status": status, "reason": reason, "worker_pid": os.getpid(), "updated_at": time.time(),
               "checkpoint": self.last_checkpoint, "ranks": list(self.dist.ranks)}
        if tr is not None:
            upd |= {"step": tr.p.step, "total_steps": tr.total, "epoch": tr.epoch,
                    "micro_batch": tr.narrowest, "grad_checkpoint": tr.memory.grad_checkpoint,
                    "grad_accumulation": tr.accumulation(), "memory_model": tr.memory,
                    "downshifts": tr.downshifts, "best_val_loss": tr.p.best_val_loss, "best_step": tr.p.best_step,
                    "best_score": tr.p.best_score}
        self.state = self.state.model_copy(update=upd)
        atomic_write_json(self.dir / TRAINING_STATE, TrainingState.model_validate(self.state.model_dump()))

    def write_progress(self, phase: str = "training", **scoring) -> None:
        """progress.json from the trainer; `scoring` sets scored, to_score and eta_seconds."""
        if not self.dist.is_root:
            return
        tr = self.trainer
        last_train = next((r for r in reversed(tr.p.metrics) if r.kind == "train"), None)
        sps = last_train.steps_per_sec if last_train else None
        eta = worker_eta.eta(self, sps)
        atomic_write_json(self.dir / PROGRESS, LiveProgress(
            worker_pid=os.getpid(), step=tr.p.step, total_steps=tr.total, epoch=tr.epoch,
            train_loss=last_train.train_loss if last_train else None, val_loss=tr.p.val_loss,
            best_val_loss=tr.p.best_val_loss, learning_rate=last_train.learning_rate if last_train else None,
            tokens_per_sec=last_train.tokens_per_sec if last_train else None, steps_per_sec=sps,
            active_memory_gb=round(mx.get_active_memory() / GIB, 4),
            peak_memory_gb=last_train.peak_memory_gb if last_train else None,
            budget_gb=self.spec.memory.budget_gb or None, micro_batch=tr.narrowest,
            grad_accumulation=tr.accumulation(), grad_checkpoint=tr.memory.grad_checkpoint,
            downshifts=len(tr.downshifts), last_checkpoint=self.last_checkpoint, split=tr.last_split,
            phase=phase, updated_at=time.time(), **({"eta_seconds": eta} | scoring)))

    def write_progress_loading(self) -> None:
        if not self.dist.is_root:
            return
        t = self.spec.training
        atomic_write_json(self.dir / PROGRESS, LiveProgress(
            worker_pid=os.getpid(), step=self.state.step, total_steps=self.state.total_steps, epoch=self.state.epoch,
            micro_batch=self.state.micro_batch, grad_accumulation=self.state.grad_accumulation or t.grad_accumulation,
            phase="loading", last_checkpoint=self.state.checkpoint, updated_at=time.time()))

    def install_signals(self) -> None:
        def handler(signum, frame):
            if getattr(self, "trainer", None) is None:  # still loading: nothing to save yet
                os._exit(EXIT_STOPPED)
            if self.trainer.stop_requested:  # second signal: leave now; the last checkpoint stands
                os._exit(128 + signum)
            self.trainer.stop_requested = True
            self.log.info("stop_requested", signal=signal.Signals(signum).name)
        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    @property
    def model_path(self) -> str:
        return model_path(self.spec, self.home)
