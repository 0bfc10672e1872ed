"""Writing a job file's TOML (the trial of a sweep, a continued job): the subset job files use,
top-level keys, then one table per section (nested tables dotted), scalars and lists of scalars."""

from __future__ import annotations

import json
import math


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"{v!r} cannot be written in a job file")
        text = repr(v)
        return text if any(c in text for c in ".en") else f"{text}.0"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # a TOML basic string: JSON's escapes are TOML's
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"{type(v).__name__} cannot be written in a job file")


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() and k.isascii() else json.dumps(k)


def _table(out: list[str], name: str, table: dict) -> None:
    scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
    if scalars or not table:
        out.append(f"\n[{name}]")
        out += [f"{_key(k)} = {_value(v)}" for k, v in scalars.items() if v is not None]
    for k, v in table.items():
        if isinstance(v, dict):
            _table(out, f"{name}.{_key(k)}", v)


def dumps(doc: dict, header: str = "") -> str:
    """TOML text for `doc` (None values left out), after `header` comment lines."""
    out = [f"# {line}" if line else "#" for line in header.splitlines()]
    out += [f"{_key(k)} = {_value(v)}" for k, v in doc.items() if not isinstance(v, dict) and v is not None]
    for k, v in doc.items():
        if isinstance(v, dict):
            _table(out, _key(k), v)
    return "\n".join(out) + "\n"
