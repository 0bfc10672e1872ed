"""Reading training data (pure Python, no mlx): mlx-lm's JSONL formats, per-line checks,
and the leak-free split of a single file (examples sharing an answer stay on one side)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from farensed.core.errors import DataError
from farensed.core.safe_read import open_lines

CHAT_ROLES = {"system", "user", "assistant", "tool"}


@dataclass(frozen=True)
class Example:
    file: str
    line: int
    obj: dict
    format: str

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def answer(self) -> str:
        """The text the model learns to produce: last assistant turn, completion or text."""
        if self.format == "chat":
            replies = [m["content"] for m in self.obj["messages"] if m.get("role") == "assistant"]
            return replies[-1] if replies else ""
        return self.obj["completion" if self.format == "completions" else "text"]

    def prompt_messages(self) -> list[dict] | None:
        """What the model is asked: the chat up to its last assistant turn, or a completion's
        prompt as one user turn (as mlx-lm trains it); None for text or an empty prompt."""
        if self.format == "chat":
            msgs = self.obj["messages"]
            last = max(i for i, m in enumerate(msgs) if m["role"] == "assistant")
            asked = msgs[:last]
            return asked if any(m["role"] == "user" and m["content"].strip() for m in asked) else None
        if self.format == "completions" and self.obj["prompt"].strip():
            return [{"role": "user", "content": self.obj["prompt"]}]
        return None

    @property
    def question(self) -> str:
        """The last user message of the prompt ("" when there is none)."""
        msgs = self.prompt_messages() or []
        users = [m["content"] for m in msgs if m["role"] == "user"]
        return users[-1] if users else ""


@dataclass
class Splits:
    train: list[Example]
    valid: list[Example]
    test: list[Example] = field(default_factory=list)
    source: str = ""  # how the splits were obtained, in words


def detect_format(obj) -> str | None:
    if not isinstance(obj, dict):
        return None
    if "messages" in obj:
        return "chat"
    if "prompt" in obj and "completion" in obj:
        return "completions"
    if "text" in obj:
        return "text"
    return None


def _chat_problem(obj: dict) -> str | None:
    msgs = obj["messages"]
    if not isinstance(msgs, list) or not msgs:
        return "'messages' must be a non-empty list"
    for i, m in enumerate(msgs):
        if not isinstance(m, dict) or not isinstance(m.get("content"), str):
            return f"messages[{i}] needs a string 'content'"
        if m.get("role") not in CHAT_ROLES:
            return f"messages[{i}] has role {m.get('role')!r}; expected system, user or assistant"
    if msgs[-1]["role"] != "assistant":
        return "the last message must be the assistant's reply"
    if not msgs[-1]["content"].strip():
        return "the assistant's reply is empty"  # as an empty completion: nothing to learn
    return None


def line_problem(obj, fmt: str | None) -> str | None:
    """Why one parsed line is not a usable example of `fmt`, or None."""
    if fmt is None:
        return "not a known format: expected 'messages' (chat), 'prompt'+'completion' or 'text'"
    if fmt == "chat":
        return _chat_problem(obj)
    if fmt == "completions":
        if not isinstance(obj["prompt"], str) or not isinstance(obj["completion"], str):
            return "'prompt' and 'completion' must be strings"
        return None if obj["completion"].strip() else "'completion' is empty"
    return None if isinstance(obj["text"], str) and obj["text"].strip() else "'text' must be a non-empty string"


MAX_LINE_BYTES = 1 << 20  # one example; the guide's longest is ~3 KB
MAX_DEPTH = 64  # JSON nesting: an example is an object of messages, 4 deep


def _too_deep(raw: bytes) -> bool:
    """Brackets nest deeper than MAX_DEPTH (counted outside strings): checked before json.loads,
    which would recurse once per level."""
    depth, in_str, esc = 0, False, False
    for b in raw:
        if in_str:
            esc, in_str = (False, in_str) if esc else (b == 0x5C, b != 0x22)
        elif b == 0x22:
            in_str = True
        elif b in (0x5B, 0x7B):
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif b in (0x5D, 0x7D):
            depth -= 1
    return False


def _parse_line(raw: bytes):
    """(obj, fmt, problem) of one line, whatever it holds."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return None, None, f"not UTF-8 text (byte {e.start + 1})"
    if _too_deep(raw):
        return None, None, f"JSON nested deeper than {MAX_DEPTH} levels"
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        return None, None, f"not valid JSON: {e.msg} (column {e.colno})"
    except (RecursionError, ValueError) as e:
        return None, None, f"not usable JSON: {type(e).__name__}"
    fmt = detect_format(obj)
    return obj, fmt, line_problem(obj, fmt)


def _lines(path: Path):
    """(number, bytes, size) of each line; a line over MAX_LINE_BYTES is skipped through, not held,
    and comes back cut, with its full size."""
    with open_lines(path) as f:
        n = 0
        while raw := f.readline(MAX_LINE_BYTES + 1):
            n += 1
            size = len(raw)
            if size > MAX_LINE_BYTES:
                while not raw.endswith(b"\n") and (more := f.readline(1 << 20)):
                    size, raw = size + len(more), more
            yield n, raw, size


def read_jsonl(path: Path, problems: list[str] | None = None) -> list[Example]:
    """Examples of one JSONL file. Bad lines raise DataError(file:line), or are collected
    into `problems` when a list is given (validation wants every problem, not the first)."""
    out, first_fmt = [], None
    for n, raw, size in _lines(path):
        if size > MAX_LINE_BYTES:
            obj, fmt, msg = None, None, f"line is {size:,} bytes; an example may be at most {MAX_LINE_BYTES:,}"
        elif not raw.strip():
            continue
        else:
            obj, fmt, msg = _parse_line(raw)
        first_fmt = first_fmt or fmt
        if msg is None and fmt != first_fmt:
            msg = f"format {fmt} differs from the file's first example ({first_fmt})"
        if msg is not None:
            if problems is None:
                raise DataError(f"{path}:{n}: {msg}")
            problems.append(f"{path}:{n}: {msg}")
            continue
        out.append(Example(str(path), n, obj, fmt))
    return out


def _bucket(answer: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}\0{answer.strip().casefold()}".encode()).hexdigest()


def split_by_answer(examples: list[Example], valid_fraction: float, seed: int = 0):
    """Deterministic train/valid split where every example with the same answer lands on
    the same side, so paraphrased questions cannot leak into validation."""
    groups: dict[str, list[Example]] = {}
    for ex in examples:
        groups.setdefault(ex.answer.strip().casefold(), []).append(ex)
    order = sorted(groups, key=lambda a: _bucket(a, seed))
    want, valid, train = valid_fraction * len(examples), [], []
    for answer in order:
        side = valid if len(valid) < want and len(groups) > 1 and answer != order[-1] else train
        side.extend(groups[answer])
    key = lambda e: (e.file, e.line)  # noqa: E731
    return sorted(train, key=key), sorted(valid, key=key)


def load_splits(data: Path, valid_fraction: float = 0.1, seed: int = 0, problems=None) -> Splits:
    """train/valid/test from a folder (train.jsonl, valid.jsonl, test.jsonl) or one .jsonl."""
    if data.is_file():
        examples = read_jsonl(data, problems)
        train, valid = split_by_answer(examples, valid_fraction, seed)
        how = f"{data.name} split {1 - valid_fraction:.0%}/{valid_fraction:.0%} by answer"
        return Splits(train, valid, [], how)
    if not (data / "train.jsonl").is_file():
        raise DataError(f"{data}: no train.jsonl in this folder (or give a single .jsonl file)")
    part = lambda name: read_jsonl(data / name, problems) if (data / name).is_file() else []  # noqa: E731
    return Splits(part("train.jsonl"), part("valid.jsonl"), part("test.jsonl"), f"{data}/train|valid|test.jsonl")
