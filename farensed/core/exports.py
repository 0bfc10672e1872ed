"""The formats of an export (no mlx): the plan the client hands the export worker on its stdin,
and export.json, the worker's report of what it wrote and how the export answers compared
with the job's own adapters (parity)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from farensed.core.strict import Strict

EXPORT_REPORT = "export.json"
Format = Literal["mlx", "gguf", "ollama"]
FORMATS: tuple[Format, ...] = ("mlx", "gguf", "ollama")
GGUF_ARCHITECTURES = ("llama", "mistral", "mixtral")  # what mlx-lm's GGUF export writes
GGUF_F16 = "model-f16.gguf"
MODELFILE = "Modelfile"


class ParityQuestion(Strict):
    source: str  # file:line or generate.prompts[i]
    messages: list[dict[str, str]]  # asked through the chat template, system prompt included

    @property
    def text(self) -> str:
        return next((m["content"] for m in reversed(self.messages) if m["role"] == "user"), "")


class ExportPlan(Strict):
    """What the export worker does: written by `farensectl export`, read from the worker's stdin."""

    format: Format
    model: str  # base model folder (checked) or hub id
    adapters: str  # adapter folder (adapters.safetensors + adapter_config.json)
    out: str  # the temporary folder to fill; the client renames it when the worker succeeds
    job: str
    adapters_label: str
    dequantize: bool
    trust_remote_code: bool = False
    system: str | None = None
    questions: list[ParityQuestion] = Field(default_factory=list)
    max_tokens: int = 48  # per parity answer, greedy
    temperature: float = 0.0  # the Modelfile's
    num_predict: int = 100  # the Modelfile's
    quantize: list[str] = Field(default_factory=list)  # llama.cpp types, e.g. Q4_K_M
    quantize_tool: str | None = None  # llama-quantize's absolute path, when found
    ollama_name: str = "farensed-model"


class AnswerDiff(Strict):
    index: int
    source: str
    question: str
    adapters: str  # base model + adapters
    exported: str
    first_difference: int  # character position where the two answers part


class AnswerParity(Strict):
    """The same questions answered greedily by base+adapters and by an exported model."""

    exported: str  # what answered: "fused MLX model", "model-f16.gguf (llama-cpp-python)"
    questions: int
    identical: int
    max_tokens: int
    differing: list[AnswerDiff] = Field(default_factory=list)


class TensorMismatch(Strict):
    name: str
    why: str


class TensorParity(Strict):
    """Every tensor of a GGUF file read back (llama.cpp's gguf reader) against the fused weights."""

    file: str
    tensors: int  # in the fused model
    matched: int
    max_abs_error: float
    types: dict[str, int] = Field(default_factory=dict)  # GGUF tensor types, e.g. {"F16": 14, "F32": 7}
    missing: list[str] = Field(default_factory=list)  # fused weights with no GGUF tensor
    extra: list[str] = Field(default_factory=list)  # GGUF tensors with no fused weight
    mismatched: list[TensorMismatch] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.mismatched) and self.matched == self.tensors


class Parity(Strict):
    answers: AnswerParity | None = None  # the fused MLX model
    gguf_tensors: TensorParity | None = None
    gguf_answers: AnswerParity | None = None
    notes: list[str] = Field(default_factory=list)  # what was not compared, and why


class QuantizedFile(Strict):
    type: str  # Q4_K_M, ...
    file: str
    written: bool
    command: list[str]  # llama-quantize's command line (run it when written is false)


class OllamaInfo(Strict):
    modelfile: str
    template: Literal["messages", "single-turn"]
    create_command: list[str]


class ExportReport(Strict):
    """export.json, beside the exported files."""

    schema_version: Literal[1] = 1
    format: Format
    job: str
    adapters: str  # best, final, a checkpoint's name
    adapter_path: str
    model: str
    dequantized: bool
    system: str | None
    files: list[str]  # the export's files (relative names)
    parity: Parity
    quantized: list[QuantizedFile] = Field(default_factory=list)
    ollama: OllamaInfo | None = None
    notes: list[str] = Field(default_factory=list)
    seconds: float
    created_at: float
