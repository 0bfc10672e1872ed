"""On-disk formats written by the worker and read by the daemon and client.

One pydantic model per file, extra="forbid", versioned. Nobody hand-builds these dicts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from farensed.core.errors import StateError
from farensed.core.hostnames import check_host, check_ip
from farensed.core.strict import Strict

TRAINING_STATE = "training_state.json"
METRICS_JSONL = "metrics.jsonl"
METRICS_JSON = "training_metrics.json"
METRICS_CSV = "training_metrics.csv"
SUMMARY = "training_summary.json"
PROGRESS = "progress.json"
JOB_FILE = "job.toml"
MANIFEST = "manifest.json"
WORKER_LOG = "worker.log"  # the worker's stdout+stderr, appended by the daemon
ANSWERS = "answers.jsonl"  # the scoring phase's scored answers, one line per question
ADAPTERS = "adapters.safetensors"  # the final adapters (run folder), the best (BEST_ADAPTERS/), a checkpoint's
ADAPTER_CONFIG = "adapter_config.json"  # beside every adapters file, in the format mlx-lm reads
BEST_ADAPTERS = "adapters"  # the folder of the best adapters (highest probe F1, or lowest validation loss)
OPTIMIZER = "optimizer.safetensors"  # a checkpoint's optimizer state
TRAINING_CONFIG = "training_config.json"  # the job as run, in the guide's terms and mlx-lm's names
CHECKPOINT_NAME = re.compile(r"^checkpoint_epoch(\d+)_step(\d+)$")  # checkpoint_epoch{E}_step{S}
CHECKPOINT_STATE = "state.json"




class Downshift(Strict):
    """One out-of-memory step down the ladder."""

    step: int
    from_micro_batch: int
    to_micro_batch: int
    grad_checkpoint: bool
    reason: str
    source: Literal["budget", "runtime_error", "process_death", "gpu_fault"]
    at: float  # unix time
    tokens: int | None = None  # rows x padded width of the micro-batch that failed, when known
    width: int | None = None  # its padded width: from/to_micro_batch are rows at this width


class ProbePoint(Strict):
    """One measured micro-batch: rows x padded width, its peak memory and its time (after compiling)."""

    rows: int
    width: int
    peak_bytes: int
    seconds: float | None = None


class MemoryMode(Strict):
    """What one checkpointing mode costs, tokens = rows x padded width: the measured points (a
    size is predicted to peak as the next larger measured one did), a line base + per_token x
    tokens above them (bytes), a token cap, and time ~ seconds_base + seconds_per_token x tokens."""

    grad_checkpoint: bool
    base_bytes: float | None = None  # None: not measured (no budget)
    per_token_bytes: float | None = None
    seconds_base: float | None = None
    seconds_per_token: float | None = None
    token_cap: int | None = None  # no micro-batch above this many tokens (out-of-memory corrections)
    points: list[ProbePoint] = Field(default_factory=list)


class MemoryModel(Strict):
    """How a run splits its steps into micro-batches; measured on the job's own data before the
    first step, corrected by every out-of-memory event, saved in training_state and checkpoints."""

    key: str  # the settings it holds for (model, lora, lengths, budget, batch, device): else remeasured
    rows_cap: int  # training.batch_size: the widest micro-batch
    rows_floor: int  # memory.min_micro_batch
    max_seq_length: int
    budget_bytes: int | None = None
    usable_bytes: int | None = None  # the budget less a safety margin: what a planned peak may reach
    grad_checkpoint: bool = False  # the mode in use
    modes: list[MemoryMode]
    why: str = ""  # why this mode, in words
    probe_seconds: float = 0.0
    corrections: int = 0
    downshifts_seen: int = 0  # training_state downshifts already folded into the model


class RankInfo(Strict):
    """One process of a data-parallel job: where it runs."""

    rank: int
    host: str
    pid: int


class ScoringPlan(Strict):
    """What the scoring phase answers, fixed when it starts so that a resume scores the same."""

    examples: int  # held-out examples answered (the first of the fixed order)
    available: int  # held-out examples with a question
    prompts: int  # the job's generate prompts, answered too
    data: str  # where the held-out examples come from, in words
    estimated_seconds: float


ProbeSetName = Literal["held_out", "train", "valid"]


class ProbeSetInfo(Strict):
    """One set of questions the worker answers at every eval; `digest` names the exact questions."""

    name: ProbeSetName  # held_out: evaluate.data or test.jsonl; else train and valid samples
    field: str  # its MetricsRow fields: probe_f1/probe_exact, or probe_valid_f1/probe_valid_exact
    data: str  # where its questions come from, in words
    questions: int
    available: int  # askable questions it was drawn from
    digest: str  # sha256 over the questions and references, in order: equal digests, equal questions


class ProbePlan(Strict):
    """The eval-time probe and the rule for "best", fixed when the run starts (training_state.json)."""

    sets: list[ProbeSetInfo]  # the first one decides "best" when select is answers
    select: Literal["answers", "val_loss"]  # the rule in force (answers needs a question to ask)
    why: str  # the rule in words, e.g. "highest F1 on 32 training questions (ties: lower val loss)"
    patience: int = 0


class PlanEstimate(Strict):
    """What `farensectl plan` (or the worker's own first steps) expects of a job, before it runs."""

    steps_per_epoch: int
    total_steps: int
    evals: int  # evaluations, the one at step 0 included
    step_seconds: float  # one optimizer step, measured (after compiling)
    eval_seconds: float  # one validation-loss eval
    probe_seconds: float  # one probe (all its sets)
    scoring_seconds: float  # the final scoring (every question x base, best, final)
    peak_memory_gb: float
    load_seconds: float = 0.0  # loading the model and data, compiling the step
    measured_steps: int = 0
    source: Literal["plan", "worker"] = "plan"  # farensectl plan, or the worker's own first steps
    at: float = 0.0

    @property
    def training_seconds(self) -> float:
        return self.total_steps * self.step_seconds

    @property
    def total_seconds(self) -> float:
        return (self.load_seconds + self.training_seconds + self.evals * (self.eval_seconds + self.probe_seconds)
                + self.scoring_seconds)


class TrainingState(Strict):
    """training_state.json: where a run stands; rewritten atomically at every checkpoint."""

    schema_version: Literal[1] = 1
    status: Literal["starting", "running", "scoring", "stopped", "done", "failed"] = "starting"
    step: int = 0
    total_steps: int = 0
    epoch: int = 0
    checkpoint: str | None = None  # folder name of the current checkpoint
    micro_batch: int
    grad_accumulation: int
    effective_batch: int
    grad_checkpoint: bool = False
    downshifts: list[Downshift] = Field(default_factory=list)
    restarts: int = 0
    best_val_loss: float | None = None  # the best adapters' validation loss
    best_step: int | None = None  # the step of the best adapters (adapters/ and the checkpoint kept)
    best_score: float | None = None  # their F1 on the probe's first set (select = answers)
    reason: str | None = None  # why it stopped, failed, or (done) ended early
    worker_pid: int | None = None
    ranks: list[RankInfo] = Field(default_factory=list)  # a data-parallel job's processes (rank 0 first)
    updated_at: float = 0.0
    # Time outside training, summed over every worker process of the run: start-up (imports,
    # loading, tokenizing) and the first step's excess over the next ones (compiling the step).
    load_seconds: float = 0.0
    compile_seconds: float = 0.0
    scoring: ScoringPlan | None = None  # set once the scoring phase has planned its work
    memory_model: MemoryModel | None = None
    probe: ProbePlan | None = None  # the questions answered at every eval, and the rule for best
    estimate: PlanEstimate | None = None  # the job's time and memory as expected at its start


class Cursor(Strict):
    """Where the data stream stands: the next step's epoch and its index within the epoch."""

    epoch: int
    index: int


class Progress(Strict):
    """Everything that moves as steps are taken: the trainer's own state, saved whole in every
    checkpoint (the metrics rows travel beside it, in the checkpoint's metrics.jsonl)."""

    step: int = 0
    cursor: Cursor = Field(default_factory=lambda: Cursor(epoch=0, index=0))
    best_val_loss: float | None = None  # the best adapters' validation loss
    best_step: int | None = None
    best_score: float | None = None  # the best adapters' probe F1 (first set)
    evals_since_best: int = 0  # evals since the best last improved: [evaluate] patience counts these
    probe_seconds: float = 0.0  # the answer probes so far, all together (inside `elapsed`)
    val_loss: float | None = None
    window_loss_sum: float = 0.0  # train-loss accumulators since the last log row
    window_tokens: int = 0
    nonfinite_streak: int = 0
    skipped_nonfinite: int = 0
    eval_pending: bool = False  # a stop interrupted the evaluation at `step`: it runs first on resume
    tokens_seen: int = 0
    elapsed: float = 0.0
    metrics: list[MetricsRow] = Field(default_factory=list, exclude=True)


class CheckpointState(Strict):
    """state.json inside a checkpoint: everything beyond the tensors needed to resume exactly."""

    schema_version: Literal[2] = 2
    progress: Progress
    micro_batch: int
    grad_accumulation: int
    grad_checkpoint: bool
    rng_seed_base: int  # dropout RNG is reseeded each step from (seed, step)
    data_fingerprint: str | None = None  # sha256 of the tokenized training set: resume refuses other data
    memory_model: MemoryModel | None = None

    @property
    def step(self) -> int:
        return self.progress.step

    @model_validator(mode="before")
    @classmethod
    def _from_version_1(cls, data):
        """Version 1 (farensed 0.1) kept the progress fields flat beside the others."""
        if isinstance(data, dict) and data.get("schema_version", 1) == 1 and "progress" not in data:
            flat = dict(data)
            moved = {k: flat.pop(k) for k in list(flat) if k in Progress.model_fields}
            return {**flat, "schema_version": 2, "progress": moved}
        return data


class LoraParameters(Strict):
    rank: int
    scale: float
    dropout: float
    keys: list[str]  # module paths inside a block, e.g. self_attn.q_proj


class AdapterConfig(Strict):
    """adapter_config.json, as mlx_lm.load(adapter_path=...) and mlx_lm.fuse read it."""

    fine_tune_type: Literal["lora", "dora"]
    num_layers: int
    lora_parameters: LoraParameters


class TrainingConfig(AdapterConfig):
    """training_config.json: the job as run, in the guide's terms plus mlx-lm's names."""

    job: dict  # the whole job file, as validated
    model: str
    data: str
    batch_size: int
    grad_accumulation_steps: int
    effective_batch_size: int
    learning_rate: float
    max_seq_length: int
    warmup_steps: int
    mask_prompt: bool


class Manifest(Strict):
    """manifest.json: a checkpoint is valid only if every file matches its checksum."""

    schema_version: Literal[1] = 1
    step: int
    epoch: int
    files: dict[str, str]  # name -> sha256
    sizes: dict[str, int]
    created_at: float


class MetricsRow(Strict):
    """One line of metrics.jsonl: a train-loss report or an evaluation, at one step."""

    kind: Literal["train", "eval"]
    step: int
    epoch: int
    train_loss: float | None = None
    val_loss: float | None = None
    learning_rate: float | None = None
    tokens_per_sec: float | None = None
    steps_per_sec: float | None = None
    active_memory_gb: float | None = None
    peak_memory_gb: float | None = None
    micro_batch: int
    grad_accumulation: int
    tokens_seen: int
    elapsed: float
    splits: str | None = None  # the window's steps by micro-batch split, e.g. "4+4:9 3+3+2:1"
    grad_checkpoint: bool | None = None
    # eval rows: the probe's answer scores (docs/scoring.md). probe_* is the first set (test.jsonl or
    # evaluate.data; without a test set, the training sample) and decides "best"; probe_valid_* is the
    # validation sample, beside it, only when there is no test set.
    probe_f1: float | None = None
    probe_exact: float | None = None
    probe_valid_f1: float | None = None
    probe_valid_exact: float | None = None
    eval_seconds: float | None = None  # the validation loss's time
    probe_seconds: float | None = None  # the probe's time (all its sets)
    best: bool | None = None  # this eval made the best adapters


class LiveProgress(Strict):
    """progress.json: the worker's latest figures, rewritten at every log row, eval and checkpoint."""

    schema_version: Literal[1] = 1
    worker_pid: int
    step: int
    total_steps: int
    epoch: int
    train_loss: float | None = None
    val_loss: float | None = None
    best_val_loss: float | None = None
    learning_rate: float | None = None
    tokens_per_sec: float | None = None
    steps_per_sec: float | None = None
    active_memory_gb: float | None = None
    peak_memory_gb: float | None = None
    budget_gb: float | None = None
    micro_batch: int
    grad_accumulation: int
    grad_checkpoint: bool = False
    downshifts: int = 0
    last_checkpoint: str | None = None
    eta_seconds: float | None = None
    split: list[int] | None = None  # the last step's micro-batches
    phase: Literal["loading", "measuring_memory", "compiling", "training", "evaluating", "probing", "checkpointing",
                   "generating", "scoring", "done"] = "training"
    scored: int | None = None  # scoring phase: questions answered so far, of to_score
    to_score: int | None = None
    updated_at: float


class Answer(Strict):
    prompt: str
    answer: str


Target = Literal["base", "best", "final"]
TARGETS: tuple[Target, ...] = ("base", "best", "final")


class TargetAnswer(Strict):
    """One model's answer to one question; the scores are None when there is no reference."""

    answer: str
    exact_match: float | None
    f1: float | None


class ScoredQuestion(Strict):
    """One line of answers.jsonl: a question, its reference answer and each model's answer."""

    schema_version: Literal[1] = 1
    kind: Literal["held_out", "prompt"]  # a held-out example, or one of the job's generate prompts
    index: int  # position among its kind (held-out: in the fixed order)
    source: str  # file:line of the example, or generate.prompts[i]
    question: str
    reference: str | None  # None for a prompt that is not a question of the data
    answers: dict[Target, TargetAnswer]
    seconds: float  # answering it with every model


class TargetScore(Strict):
    exact_match: float
    f1: float


class AnswerScores(Strict):
    """The means of answers.jsonl per model, in training_summary.json."""

    data: str  # where the held-out examples came from
    examples: int  # held-out examples scored
    available: int  # held-out examples with a question
    means: dict[Target, TargetScore]  # over the held-out examples
    prompt_means: dict[Target, TargetScore] = Field(default_factory=dict)  # over prompts with a reference
    seconds: float


class TrainingSummary(Strict):
    """training_summary.json, written once at the end."""

    schema_version: Literal[1] = 1
    job: str
    model: str
    steps: int
    epochs: float
    final_train_loss: float | None
    final_val_loss: float | None
    best_val_loss: float | None
    best_step: int | None
    seconds: float
    tokens: int
    tokens_per_sec: float
    trainable_parameters: int
    total_parameters: int
    downshifts: list[Downshift]
    restarts: int
    memory_model: MemoryModel | None = None
    skipped_nonfinite_steps: int
    truncated_examples: int
    answers: list[Answer]
    adapters: str  # the folder holding the final adapters
    best_adapters: str
    # `seconds` and `tokens_per_sec` count training only; these are apart from it
    load_seconds: float = 0.0
    compile_seconds: float = 0.0
    scores: AnswerScores | None = None
    best_score: float | None = None  # the best adapters' probe F1
    probe: ProbePlan | None = None
    probe_seconds: float = 0.0  # all the probes of the run together (apart from `seconds`)
    stopped_early: str | None = None  # [evaluate] patience ended training before total_steps: why


class HostfileHost(Strict):
    """One host of mlx's hostfile: the name to ssh to, its IPs (ring), its RDMA devices (jaccl)."""

    ssh: str = Field(min_length=1)
    ips: list[str] = Field(default_factory=list)
    rdma: list[str | list[str] | None] = Field(default_factory=list)

    @field_validator("ssh")
    @classmethod
    def _ssh_is_a_host(cls, v: str) -> str:
        return check_host(v)  # never an option: `-oProxyCommand=...` would run a command

    @field_validator("ips")
    @classmethod
    def _ips_are_ips(cls, v: list[str]) -> list[str]:
        return [check_ip(x) for x in v]


class MlxHostfile(Strict):
    """mlx.launch's JSON hostfile (as mlx.distributed_config writes it); a bare list is its `hosts`."""

    backend: str = ""
    envs: list[str] = Field(default_factory=list)
    hosts: list[HostfileHost] = Field(min_length=1)


def read_model(path: Path, model: type[BaseModel]):
    """Load one state file, naming the file when it is missing or corrupt."""
    try:
        return model.model_validate_json(Path(path).read_bytes())
    except FileNotFoundError:
        raise StateError(f"{path}: not found") from None
    except OSError as e:  # a folder in its place, no permission
        raise StateError(f"{path}: cannot read it: {e.strerror}") from None
    except ValidationError as e:
        raise StateError(f"{path}: not a valid {model.__name__}: {first_error(e)}") from None
    except ValueError as e:
        raise StateError(f"{path}: not a valid {model.__name__}: {e}") from None


def first_error(e: ValidationError) -> str:
    """One line for a pydantic error (its first problem, and how many more), never its multi-line text."""
    errors = e.errors(include_url=False)
    if not errors:
        return "not valid"
    err = errors[0]
    where = ".".join(str(x) for x in err.get("loc", ()))
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return (f"{where}: " if where else "") + err.get("msg", "not valid") + more


def read_jsonl_rows(path: Path, model: type[BaseModel]) -> list:
    """Rows of an append-only JSONL file; a torn last line (crash mid-write) is dropped."""
    rows = []
    if not Path(path).exists():
        return rows
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            rows.append(model.model_validate(json.loads(line)))
        except (ValueError, ValidationError):
            continue
    return rows


def read_metrics_jsonl(path: Path) -> list[MetricsRow]:
    return read_jsonl_rows(path, MetricsRow)


def read_answers(path: Path) -> list[ScoredQuestion]:
    return read_jsonl_rows(path, ScoredQuestion)
