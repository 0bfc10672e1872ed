"""The job file (TOML): one pydantic model shared by daemon, worker and client.

A *step* is one optimizer update over the effective batch
(batch_size x grad_accumulation examples); every step setting counts those.
Defaults are the values of the user's M1 guide.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, PrivateAttr, field_validator, model_validator

from farensed.core.experiment_spec import Init, Sweep
from farensed.core.hostnames import check_host, is_ip
from farensed.core.strict import Strict

SCHEMA_VERSION = 1
MAX_JOB_FILE_BYTES = 1024 * 1024
GUIDE_TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


INT_MAX = 2**31 - 1  # no count, seed or size of a job comes near it; past 64 bits MLX and numpy overflow
COUNT = 10**9  # steps, cadences, examples: a bound that no real job reaches


class _JobModel(Strict):
    """Strict types (`true` is not 1.0, "4" and 4.0 are not 4), finite numbers, and an assignment is
    validated as well: a job changed in code stays a valid job."""

    model_config = ConfigDict(validate_assignment=True, strict=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, v):
        if isinstance(v, str) and "\x00" in v:
            raise ValueError("holds a NUL character")
        if isinstance(v, list) and any(isinstance(x, str) and "\x00" in x for x in v):
            raise ValueError("holds a NUL character")
        return v


class Training(_JobModel):
    batch_size: int = Field(4, ge=1, le=4096, description="examples per micro-batch")
    grad_accumulation: int = Field(2, ge=1, le=4096, description="micro-batches per step")
    learning_rate: float = Field(2e-4, gt=0, le=1, description="peak learning rate, after the warm-up")
    epochs: int = Field(3, ge=1, le=100_000, description="passes over the training set (unless max_steps)")
    max_steps: int | None = Field(None, ge=1, le=COUNT, description="stop after this many steps")
    max_seq_length: int = Field(512, ge=8, le=1 << 20, description="tokens; longer examples are truncated")
    warmup_steps: int = Field(100, ge=0, le=COUNT, description="steps of linear warm-up from 0")
    schedule: Literal["constant", "cosine"] = Field("constant", description="after the warm-up")
    min_learning_rate: float = Field(0.0, ge=0, le=1, description="end of the cosine decay")
    optimizer: Literal["adamw", "adam"] = Field("adamw", description="adam ignores weight_decay")
    weight_decay: float = Field(0.0, ge=0, le=100, description="AdamW's decoupled weight decay")
    grad_clip: float = Field(0.0, ge=0, le=1e6, description="max gradient norm; 0 = off")
    seed: int = Field(0, ge=0, le=INT_MAX, description="the data order, LoRA init and dropout derive from it")

    @property
    def effective_batch(self) -> int:
        return self.batch_size * self.grad_accumulation


class Lora(_JobModel):
    type: Literal["lora", "dora"] = Field("lora", description="QLoRA when the model is quantized")
    rank: int = Field(8, ge=1, le=4096, description="LoRA rank r")
    scale: float = Field(16.0, gt=0, le=1e6, description="LoRA scale (alpha)")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout on each adapter's input while training")
    target_modules: list[str] = Field(default_factory=lambda: list(GUIDE_TARGET_MODULES), min_length=1,
                                      description="module names inside a block that get adapters")
    num_layers: int = Field(16, ge=-1, le=4096, description="last N blocks; -1 = all")

    @model_validator(mode="after")
    def _num_layers_nonzero(self):
        if self.num_layers == 0:
            raise ValueError("num_layers must be -1 (all) or at least 1")
        return self


class Cadence(_JobModel):
    checkpoint_every: int = Field(200, ge=1, le=COUNT, description="steps")
    checkpoint_every_minutes: float = Field(30.0, ge=0, le=1e6, description="0 = off")
    eval_every: int = Field(200, ge=1, le=COUNT, description="steps")
    log_every: int = Field(10, ge=1, le=COUNT, description="steps")
    keep_checkpoints: int = Field(3, ge=1, le=10_000, description="newest kept, plus the best")
    val_batches: int = Field(0, ge=0, le=COUNT, description="0 = the whole validation set")


class Memory(_JobModel):
    budget_gb: float = Field(0.0, ge=0, le=1e6, description="0 = no budget")
    min_micro_batch: int = Field(1, ge=1, le=4096, description="the narrowest micro-batch the plan may use")
    grad_checkpoint: bool = Field(False, description="start with gradient checkpointing (else a measured choice)")


class Generate(_JobModel):
    prompts: list[str] = Field(default_factory=list, description="questions answered at the end by base, best, final")
    system: str | None = Field(None, description="system message before each prompt; default: the one every chat"
                                " example of the data starts with; \"\" = none")
    max_tokens: int = Field(100, ge=1, le=1 << 20, description="longest answer to a prompt")
    temperature: float = Field(0.0, ge=0, le=100, description="0 = greedy")


class Distributed(_JobModel):
    """Data-parallel over several processes, GPUs or machines, started by mlx.launch."""

    backend: Literal["ring", "jaccl", "mpi", "nccl", "any"] = Field(
        "ring", description="ring: TCP (Thunderbolt or Ethernet); jaccl: RDMA over Thunderbolt 5; nccl: CUDA GPUs")
    hosts: list[str] | None = Field(None, min_length=1, description="IP addresses; the first is this machine (rank 0)")
    hostfile: str | None = Field(None, description="mlx's JSON hostfile (mlx.distributed_config writes one)")
    processes: int = Field(1, ge=1, le=64,
                           description="processes per host (mlx.launch -n); one machine: the rank count")
    port: int = Field(32323, ge=1024, le=65535, description="first TCP port of the ring backend (NCCL: its port)")

    @field_validator("hosts")
    @classmethod
    def _hosts_are_hosts(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else [check_host(h) for h in v]  # never an ssh option

    @model_validator(mode="after")
    def _where(self):
        if self.hosts is not None and self.hostfile is not None:
            raise ValueError("give hosts or hostfile, not both")
        if self.hostfile is not None and self.processes > 1:
            raise ValueError("processes applies to hosts; in a hostfile, list a host once per process")
        if self.hostfile is None and self.ranks < 2:
            raise ValueError("fewer than 2 processes: set processes = 2 or more, or list 2 or more hosts")
        if self.backend in ("ring", "nccl") and self.hosts and not all(map(is_ip, self.hosts)):
            raise ValueError(f"the {self.backend} backend needs IP addresses in hosts; for names, use a hostfile"
                             " with ssh names and ips (mlx.distributed_config writes one)")
        if self.backend == "jaccl" and self.hostfile is None:
            raise ValueError("the jaccl backend needs a hostfile with the RDMA devices (mlx.distributed_config)")
        return self

    @property
    def ranks(self) -> int:
        """Processes in all (not known here for a hostfile: see farensed.host.cluster)."""
        return len(self.hosts or ["127.0.0.1"]) * self.processes


DEFAULT_EXAMPLES = 64  # questions the final scoring answers: a count, so two runs score the same ones
DEFAULT_PROBE = 32  # questions answered at every eval
RETIRED_KEYS = {  # [evaluate] keys of farensed 0.1 that are read, mapped, and warned about (never refused)
    "examples": f'examples = "auto" is retired (scores were not comparable): {DEFAULT_EXAMPLES} questions are'
                f' answered instead; write examples = N',
    "time_fraction": "time_fraction is retired with examples = \"auto\" and has no effect; remove it",
}


class Evaluate(_JobModel):
    """Answers to questions: a fixed probe set at every eval (it chooses the best adapters and can
    stop a job early), and after training a fixed set answered by the base model, the best and the
    final adapters, each scored against its reference (answers.jsonl). docs/scoring.md."""

    examples: int = Field(DEFAULT_EXAMPLES, ge=0, le=COUNT,
                          description="questions the final scoring answers, in a fixed order (all when there are"
                                      " fewer); 0 = none")
    probe: int = Field(DEFAULT_PROBE, ge=0, le=100_000,
                       description="questions answered at every eval (the same ones every time and in every job on"
                                   " the same data); 0 = none")
    select: Literal["answers", "val_loss"] = Field(
        "answers", description='best adapters: "answers" = highest probe F1 (ties: lower val loss; val_loss when'
                               ' there is no question to ask), "val_loss" = lowest validation loss')
    patience: int = Field(0, ge=0, le=COUNT, description="end the job (done) after this many evals without a better"
                          " best; 0 = never")
    data: str | None = Field(None, description="a .jsonl of questions; default test.jsonl, else the validation split")
    probe_max_tokens: int = Field(48, ge=0, le=1 << 20,
                                  description="longest answer of the probe at evals; 0 = as the final scoring's")
    max_tokens: int = Field(0, ge=0, le=1 << 20, description="longest answer; 0 = twice the reference's tokens plus 16")
    _retired: list[str] = PrivateAttr(default_factory=list)  # retired keys this file used (mapped, warned about)

    @model_validator(mode="wrap")
    @classmethod
    def _retired_keys(cls, data, handler):
        """An older job file keeps running: "auto" becomes the default count, time_fraction goes."""
        seen = []
        if isinstance(data, dict):
            data = dict(data)
            if data.get("examples") == "auto":
                data["examples"] = DEFAULT_EXAMPLES
                seen.append("examples")
            if "time_fraction" in data:
                data.pop("time_fraction")
                seen.append("time_fraction")
        model = handler(data)
        if seen:
            model._retired = seen
        return model

    @field_validator("examples", mode="before")
    @classmethod
    def _count(cls, v):
        if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= COUNT:
            return v
        raise ValueError("expected 0 (none) or a count of questions")

    @property
    def retired(self) -> dict[str, str]:
        """The retired keys this file used, each with what it means now."""
        return {k: RETIRED_KEYS[k] for k in self._retired}

    @property
    def warnings(self) -> list[str]:
        return list(self.retired.values())


class Report(_JobModel):
    """What the run writes for people to look at, beyond its own files."""

    tensorboard: bool = Field(False, description="also write the scalars as TensorBoard event files in the run"
                                                 " folder (needs tensorboardX: pip install 'farensed[tensorboard]')")


class JobSpec(_JobModel):
    schema_version: Literal[1] = Field(SCHEMA_VERSION, description="the job file format's version")
    name: str = Field(min_length=1, description="the job's name; its id comes from the file name")
    model: str = Field(min_length=1, description="local mlx-lm model folder or hub id")
    data: str = Field(min_length=1, description="folder with train/valid.jsonl, or one .jsonl")
    valid_fraction: float = Field(0.1, gt=0, lt=1, description="for a single .jsonl")
    mask_prompt: bool = Field(True, description="loss on the assistant reply / completion only")
    output: str | None = Field(None, description="default checkpoints/<job id>")
    priority: int = Field(0, ge=-10**6, le=10**6, description="higher runs first; then arrival order")
    max_restarts: int = Field(3, ge=0, le=10_000, description="crash restarts before the job fails")
    trust_remote_code: bool = Field(False, description="refused unless the daemon runs with --allow-remote-code")
    training: Training = Field(default_factory=Training)
    lora: Lora = Field(default_factory=Lora)
    cadence: Cadence = Field(default_factory=Cadence)
    memory: Memory = Field(default_factory=Memory)
    generate: Generate = Field(default_factory=Generate)
    distributed: Distributed | None = None
    evaluate: Evaluate = Field(default_factory=Evaluate)
    report: Report = Field(default_factory=Report)
    init: Init | None = Field(None, description="start from adapters trained before (farensectl continue writes it)")
    sweep: Sweep | None = Field(None, description="run trials of this job with settings drawn from params")

    @model_validator(mode="after")
    def _micro_batch_floor(self):
        if self.memory.min_micro_batch > self.training.batch_size:
            raise ValueError("memory.min_micro_batch is larger than training.batch_size")
        return self
