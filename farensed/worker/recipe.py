"""One run of a job in its output folder, as a recipe: setup(), resume(), train(), finish().

`python -m farensed.worker RUN_DIR` is the entry point (see __main__.py, and flow.py for the order
of the phases and how each end becomes an exit code); RUN_DIR holds job.toml, and everything the
run writes lands beside it, through the rank's writer (run_writer.py: rank 0 writes, others not).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import mlx.core as mx
import psutil
from mlx.utils import tree_flatten, tree_map_with_path

from farensed.core import data_checks
from farensed.core.exitcodes import EXIT_STOPPED
from farensed.core.formats import (
    ADAPTERS,
    JOB_FILE,
    OPTIMIZER,
    SUMMARY,
    CheckpointState,
    MetricsRow,
    TrainingState,
)
from farensed.core.jobfile import load_job, parse_job
from farensed.core.jobspec import JobSpec
from farensed.core.paths import Home
from farensed.core.run_folder import read_training_state
from farensed.memory import plan as memplan
from farensed.scoring.questions import held_out, scored_questions
from farensed.worker import batching, checkpoint, data, evaluation, memory, run_writer, tensorboard_events
from farensed.worker import init as worker_init
from farensed.worker.answer_probe import AnswerProbe
from farensed.worker.cadence import Cadence
from farensed.worker.distributed import Solo
from farensed.worker.eta import at_start
from farensed.worker.faults import Faults
from farensed.worker.finish import complete, final_outputs
from farensed.worker.memory import MemoryPlanner
from farensed.worker.memory_probe import MemoryProbe
from farensed.worker.model import BadJob, adapter_weights, apply_lora, load_base, model_path
from farensed.worker.scoring import score
from farensed.worker.step import make_optimizer
from farensed.worker.trainer import Trainer


class Recipe:
    """One job's training in its run folder: setup() loads, resume() continues from the last checkpoint
    (or starts from [init]'s adapters), train() runs the loop (worker/cadence.py), finish() writes the
    outputs and scores (rank 0)."""

    def __init__(self, run_dir: Path, home: Home, log, compile: bool = True, dist=None):
        self.dir, self.home, self.log = run_dir, home, log
        self.dist = dist or Solo()  # a data-parallel job's rank; only rank 0 writes in the run folder
        self.spec, self.state = self._read_job_and_state()
        if self.spec.sweep is not None:
            raise BadJob(f"{run_dir / JOB_FILE}: a sweep runs no worker itself; the daemon runs its trials")
        self.last_checkpoint = self.state.checkpoint
        self.compile = compile
        self.writer = run_writer.for_rank(self.dist.is_root, run_dir, log, self.spec.cadence.keep_checkpoints)
        self.trainer: Trainer | None = None
        self.training_over = False  # a restart after training ended scores what is left, no more

    def bind_log(self, **values) -> None:
        """Bind `values` to every event the run and its writer log from now on."""
        self.log = self.writer.log = self.log.bind(**values)

    def _read_job_and_state(self) -> tuple[JobSpec, TrainingState]:
        """Rank 0 reads job.toml and training_state.json; other ranks (other hosts) get them from it."""
        path = self.dir / JOB_FILE

        def read() -> dict:
            spec = load_job(path)  # every problem with its line
            state = read_training_state(self.dir, spec, self.log).model_dump(mode="json")
            return {"job": path.read_text(encoding="utf-8"), "state": state}
        got = self.dist.from_root(read)
        return parse_job(got["job"], str(path)), TrainingState.model_validate(got["state"])

    # --- the recipe --------------------------------------------------------------------
    def setup(self) -> None:
        """The model with its adapters, the data, the optimizer, the trainer and its memory planner."""
        self.write_progress_loading()
        self.writer.scalars = tensorboard_events.for_run(self.dir, self.spec)  # [report] tensorboard: event files
        self._load_model()
        train, valid = self._load_data()
        self.build_optimizer()
        self._make_trainer(train, valid)
        self._plan_probe()
        self.dist.check_same("the tokenized training data (data, max_seq_length, mask_prompt, tokenizer)",
                             self.trainer.fingerprint)
        self._limit_memory()

    def resume(self) -> None:
        """Continue from the newest checkpoint that verifies; a fresh start if there is none.
        Rank 0 reads it; every rank then holds rank 0's adapters, optimizer state and cursor."""
        found = self.dist.from_root(self._load_newest)
        self.dist.sync_from_root(self.model, self.optimizer)
        cs = self._continue_from(found)
        self.settle_memory(cs)
        if cs is not None:
            self.log.info("resumed", checkpoint=found["name"], step=cs.progress.step,
                          micro_batch=self.planner.narrowest, grad_checkpoint=self.planner.memory_model.grad_checkpoint)

    def train(self) -> None:
        """The training loop, unless rank 0's run folder says training already ended."""
        self.note_loaded()
        self.training_over = self.dist.from_root(lambda: self.scoring_pending)
        if self.training_over:
            return
        self.write_state("running")
        Cadence(self).loop()
        if self.stopped_early:
            p = self.trainer.progress
            self.log.info("stopped_early", step=p.step, total_steps=self.trainer.total, best_step=p.best_step,
                          reason=self.stopped_early)

    def finish(self) -> None:
        """Rank 0: the final outputs (unless a restart found them written), the scoring phase, the summary."""
        if not self.dist.is_root:  # rank 0 writes the outputs and scores alone
            self.log.info("rank_done", steps=self.trainer.progress.step)
            return
        if not self.training_over:
            final_outputs(self)
        summary = complete(self, score(self))
        self.log.info("job_done", steps=summary.steps, best_val_loss=summary.best_val_loss, seconds=summary.seconds)

    # --- set-up -------------------------------------------------------------------------
    def _load_model(self) -> None:
        """The base model with LoRA applied; its untrained adapters kept (the base model's answers)."""
        self.model, self.tokenizer = load_base(self.spec, self.home)
        self.adapter_config = apply_lora(self.model, self.spec)
        self.initial_adapters = adapter_weights(self.model)  # change nothing: the base model's answers

    def _load_data(self) -> tuple[batching.Tokenized, batching.Tokenized | None]:
        got = data.load(self.spec, self.home, self.tokenizer, self.log)
        self.splits, self.truncated = got.splits, got.truncated
        data_checks.require_targets(self.home.resolve(self.spec.data), int(got.train.n_targets.sum()) if got.train
                                    else 0, self.spec.training.max_seq_length, self.spec.mask_prompt)  # exit 65
        return got.train, got.valid

    def build_optimizer(self) -> None:
        """The job's optimizer, its state set up for the trainable parameters (resume() may replace it)."""
        t = self.spec.training
        self.optimizer = make_optimizer(t.optimizer, t.learning_rate, t.weight_decay)
        self.optimizer.init(self.model.trainable_parameters())

    def _make_trainer(self, train: batching.Tokenized, valid: batching.Tokenized | None) -> None:
        """The trainer, handed a memory planner with the plan without measurements (resume() settles it)."""
        spec = self.spec
        key = memory.settings_key(spec, self.model_path, train.fingerprint(), self.compile)
        probe = MemoryProbe(train, spec.training.max_seq_length, self.model, self.optimizer)
        self.planner = MemoryPlanner(spec, train, memory.unmeasured(spec, key), probe, self.log)
        self.trainer = Trainer(spec, self.model, self.optimizer, train, valid, self.planner,
                               Faults(self.dir, rank=self.dist.rank), self.log, self.compile, dist=self.dist)

    def _plan_probe(self) -> None:
        """The questions answered at every eval and the rule for best, in training_state.json."""
        for warning in self.spec.evaluate.warnings:
            self.log.warning("job_file_retired_key", detail=warning)
        self.probe = AnswerProbe(self.spec, self.home, self.splits, self.tokenizer)
        held = held_out(self.spec, self.home, self.splits)
        self.scored_questions = len(scored_questions(self.spec, held)) + len(self.spec.generate.prompts)
        plan = evaluation.probe_plan(self, self.probe)
        self.state = self.state.model_copy(update={"probe": plan})
        self.log.info("probe_planned", select=plan.select, rule=plan.why, patience=plan.patience,
                      sets={s.field: f"{s.questions} {s.name}" for s in plan.sets})

    def _limit_memory(self) -> None:
        """With [memory] budget_gb: MLX's own memory limit set from it."""
        if not self.spec.memory.budget_gb:
            return
        budget_gb = self.spec.memory.budget_gb
        limit = memplan.mlx_limit_bytes(int(budget_gb * memplan.GIB), mx.default_device() == mx.gpu)
        mx.set_memory_limit(limit)
        self.log.info("memory_limit", budget_gb=budget_gb, mlx_limit_gb=round(limit / memplan.GIB, 3),
                      cuda_graphs=os.environ.get("MLX_USE_CUDA_GRAPHS", "default"))

    # --- resume ------------------------------------------------------------------------
    def _load_newest(self) -> dict | None:
        """Load the newest valid checkpoint's tensors into the model and optimizer; its name, state, metrics."""
        checkpoint.clean_temp(self.dir)
        ck = checkpoint.newest_valid(self.dir, self.log)
        if ck is None:  # a fresh start: from the [init] adapters, if the job names some
            worker_init.apply(self.model, self.optimizer, self.spec, self.home, self.log)
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

    def _continue_from(self, found: dict | None) -> CheckpointState | None:
        """The trainer at the checkpoint found (its progress, metrics), or at the start; the metrics log to match."""
        if found is None:
            self.trainer.recompile()  # other ranks: the optimizer state now holds rank 0's values
            self.writer.reset_metrics([])
            return None
        cs = CheckpointState.model_validate(found["state"])
        rows = [MetricsRow.model_validate_json(line) for line in found["metrics"].splitlines() if line]
        self.trainer.resume(cs, rows)
        self.writer.reset_metrics(rows)
        self.last_checkpoint = found["name"]
        return cs

    def settle_memory(self, cs: CheckpointState | None) -> None:
        """The memory model: the saved one when the settings are the same (so a resume splits as
        before), else measured (with a budget, by rank 0); then the daemon's records of deaths folded in."""
        tr, planner = self.trainer, self.planner
        key = planner.memory_model.key
        saved = [m for m in (self.state.memory_model, cs.memory_model if cs else None) if m and m.key == key]
        model = saved[0] if saved else planner.memory_model
        if not saved and model.budget_bytes and self.dist.is_root:  # measured once, by rank 0, for every rank
            self.write_progress("measuring_memory")
            model = planner.establish(model, tr.total, tr.per_epoch)
        planner.put(model)
        tr.agree_memory()
        planner.fold_deaths(self.state.downshifts)
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

    # --- what the loop calls -----------------------------------------------------------
    @property
    def stopped_early(self) -> str | None:
        """[evaluate] patience spent: why training ends here (kept in the checkpoint's progress)."""
        return evaluation.early_stop(self)

    def evaluate(self) -> None:
        evaluation.evaluate(self)

    def record(self, row: MetricsRow) -> None:
        self.trainer.progress.metrics.append(row)
        if self.state.estimate is None and row.kind == "train":  # the first timed steps: the job's figures
            self.state = self.state.model_copy(update={"estimate": at_start(self, row)})
            self.write_state("running")
        self.writer.metrics_row(row)
        self.write_progress()

    def save_checkpoint(self) -> None:
        self.writer.checkpoint(self.trainer, self._tensors, self._checkpoint_saved)
        self.write_progress()

    def _tensors(self) -> dict:
        return {ADAPTERS: adapter_weights(self.model), OPTIMIZER: dict(tree_flatten(self.optimizer.state))}

    def _checkpoint_saved(self, name: str) -> None:
        self.last_checkpoint = name
        self.write_state("running")

    # --- state files (through the rank's writer) --------------------------------------
    def write_state(self, status: str, reason: str | None = None) -> None:
        self.state = self.state.model_copy(update=run_writer.state_fields(self, status, reason))
        self.writer.state(self.state)

    def write_progress(self, phase: str = "training", **scoring) -> None:
        """progress.json from the trainer; `scoring` sets scored, to_score and eta_seconds."""
        self.writer.progress(run_writer.live_progress(self, phase, scoring))

    def write_progress_loading(self) -> None:
        self.writer.progress(run_writer.loading_progress(self.state, self.spec))

    def install_signals(self) -> None:
        def handler(signum, frame):
            if self.trainer is None:  # still loading: nothing to save yet
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
