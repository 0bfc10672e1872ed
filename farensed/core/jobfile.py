"""Reading a job file: size, encoding, TOML syntax and schema, every problem with its line."""

from __future__ import annotations

import difflib
import json
import re
import tomllib
import typing
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ValidationError

from farensed.core import mlx_lm_names
from farensed.core.errors import JobFileError
from farensed.core.jobspec import MAX_JOB_FILE_BYTES, JobSpec
from farensed.core.safe_read import NotRegular, TooLarge, read_bytes


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a job, pointing at the file, line and key where possible."""

    file: str
    message: str
    line: int | None = None
    key: str | None = None

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "")
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\.\"' ]+?)\s*=")


def _clean_key(raw: str) -> str:
    return ".".join(part.strip().strip("\"'") for part in raw.split("."))


def key_lines(text: str) -> dict[str, int]:
    """Map dotted keys (and table names) to the 1-based line that defines them."""
    lines: dict[str, int] = {}
    table = ""
    for n, line in enumerate(text.splitlines(), start=1):
        if m := _HEADER.match(line):
            table = _clean_key(m.group(1))
            lines.setdefault(table, n)
        elif m := _KEY.match(line):
            key = _clean_key(m.group(1))
            lines.setdefault(f"{table}.{key}" if table else key, n)
    return lines


def _fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the (sub)model that `loc` lives in, for did-you-mean hints."""
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        sub = getattr(field, "annotation", None) if field else None
        # X | None: the model inside
        sub = next((a for a in typing.get_args(sub) if isinstance(a, type) and issubclass(a, BaseModel)), sub)
        if not (isinstance(sub, type) and issubclass(sub, BaseModel)):
            return []
        model = sub
    return list(model.model_fields)


def _tables(model: type[BaseModel]) -> dict[str, list[str]]:
    """Each table's keys ("" the top level's), for a key put in the wrong one."""
    tables = {"": [k for k in model.model_fields if not _fields_at(model, (k, "x"))]}
    return tables | {k: keys for k in model.model_fields if (keys := _fields_at(model, (k, "x")))}


def _describe(err: dict, model: type[BaseModel]) -> str:
    loc = err["loc"]
    if err["type"] == "extra_forbidden":
        if (where := mlx_lm_names.hint(loc, _tables(model))) is not None:
            return f"unknown key {loc[-1]}: {where}"
        close = difflib.get_close_matches(str(loc[-1]), _fields_at(model, loc), n=1, cutoff=0.6)
        return "unknown key" + (f" (did you mean {close[0]}?)" if close else "")
    if err["type"] == "missing":
        return "required key is missing"
    got = err.get("input")
    shown = repr(got) if not isinstance(got, dict) else "a table"
    return f"{err['msg']} (got {shown})"


def schema_problems(file: str, text: str, exc: ValidationError, model=JobSpec) -> list[Problem]:
    """Turn pydantic's errors into Problems with dotted keys and line numbers."""
    lines = key_lines(text)
    out = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        line = lines.get(key) or (lines.get(key.rsplit(".", 1)[0]) if "." in key else None)
        out.append(Problem(file, _describe(err, model), line, key or None))
    return out


def _toml_problem(file: str, exc: tomllib.TOMLDecodeError) -> Problem:
    m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
    line = int(m.group(1)) if m else getattr(exc, "lineno", None)
    msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
    return Problem(file, f"not valid TOML: {msg}", line)


def looks_like_jsonl(text: str, name: str = "") -> bool:
    """A JSON-lines data file: named .jsonl, or its first line is a JSON object."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if name.endswith(".jsonl"):
        return True
    try:
        return first.startswith("{") and isinstance(json.loads(first), dict)
    except ValueError:
        return False


def data_file_hint(file: str) -> str:
    return (f"a data file (JSON lines), not a job file: a job points at it with `data = \"{file}\"` (one .jsonl,"
            " split by valid_fraction) or at its folder holding train.jsonl and valid.jsonl; start from"
            " jobs/demo.toml")


def _data_file_problem(file: str, text: str) -> Problem | None:
    shown = file if file.startswith("<") else str(Path(file).expanduser().resolve())  # a job's paths are the home's
    return Problem(file, data_file_hint(shown)) if looks_like_jsonl(text, file) else None


def read_job_text(path: Path) -> str:
    """The job file's text: a regular file (never a FIFO or a device), at most 1 MiB, UTF-8."""
    try:
        raw = read_bytes(path, MAX_JOB_FILE_BYTES)
    except TooLarge:
        raise JobFileError(path, [Problem(str(path), "file is over 1 MiB; job files are at most 1 MiB")]) from None
    except NotRegular as e:
        raise JobFileError(path, [Problem(str(path), str(e).removeprefix(f"{path}: "))]) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise JobFileError(path, [Problem(str(path), "not UTF-8 text", line)]) from None


# What TOML or the schema may raise on hostile input besides their own errors: nesting thousands deep
# (RecursionError), integers of thousands of digits (ValueError), values past a float (OverflowError).
HOSTILE = (RecursionError, ValueError, OverflowError, MemoryError, TypeError)


def parse_job(text: str, file: str = "<job>") -> JobSpec:
    """Parse TOML text into a JobSpec; raises JobFileError listing every problem, whatever the input."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise JobFileError(file, [_data_file_problem(file, text) or _toml_problem(file, e)]) from None
    except HOSTILE as e:
        raise JobFileError(file, [Problem(file, f"not a job file TOML can hold: {_short(e)}")]) from None
    try:
        return JobSpec.model_validate(raw)
    except ValidationError as e:
        problems = _schema_problems_or_one(file, text, e)
    except HOSTILE as e:
        problems = [Problem(file, f"values the job file cannot hold: {_short(e)}")]
    raise JobFileError(file, problems)


def _schema_problems_or_one(file: str, text: str, e: ValidationError) -> list[Problem]:
    try:
        return schema_problems(file, text, e)
    except HOSTILE as inner:  # e.g. a value too large to show
        return [Problem(file, f"values the job file cannot hold: {_short(inner)}")]


def _short(e: BaseException) -> str:
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return f"{type(e).__name__}: {text[:200]}"


def load_job(path: str | Path) -> JobSpec:
    """Read and parse one job file (no path or data checks; see validate.py)."""
    path = Path(path)
    try:
        text = read_job_text(path)
    except OSError as e:
        raise JobFileError(path, [Problem(str(path), f"cannot read job file: {e.strerror}")]) from None
    return parse_job(text, str(path))
