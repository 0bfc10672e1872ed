"""A model's chat template read from its folder (no mlx), and the same template with the job's
system prompt put first when a conversation has none, so a client that sends only the user's
question is answered as the model was trained."""

from __future__ import annotations

import json
from pathlib import Path

from farensed.core.errors import FarensedError

MAX_TEMPLATE_CHARS = 100_000  # passed on a command line: stay far below the OS's per-argument limit


def _from_config(cfg: Path) -> str | None:
    try:
        value = json.loads(cfg.read_text("utf-8")).get("chat_template")
    except (OSError, ValueError) as e:
        raise FarensedError(f"{cfg}: cannot read the chat template: {e}") from None
    if isinstance(value, list):  # named templates: the default one
        value = next((t.get("template") for t in value if t.get("name") == "default"), None)
    return value if isinstance(value, str) and value.strip() else None


def read_chat_template(model_dir: Path) -> str | None:
    """The template a tokenizer saved in `model_dir` uses (chat_template.jinja, chat_template.json
    or tokenizer_config.json), or None when it has none."""
    jinja = model_dir / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text("utf-8")
    for name in ("chat_template.json", "tokenizer_config.json"):
        if (model_dir / name).is_file() and (found := _from_config(model_dir / name)):
            return found
    return None


def model_folder(model: str) -> Path:
    """A local model folder, or a hub model's snapshot already in the local cache (never downloaded)."""
    if Path(model).is_dir():
        return Path(model)
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model, local_files_only=True))
    except Exception:  # any failure means the same here: the files are not on this machine
        raise FarensedError(f"model {model!r}: not a local folder and not in the hub cache") from None


def jinja_literal(text: str) -> str:
    """`text` as a Jinja string literal: anything but plain printable ASCII as \\U escapes, which
    Jinja's lexer decodes back exactly (quotes, backslashes, newlines, accents, emoji)."""
    safe = (c if 0x20 <= ord(c) < 0x7F and c not in "\\\"'{}%#" else f"\\U{ord(c):08x}" for c in text)
    return '"' + "".join(safe) + '"'


def with_default_system(template: str, system: str | None) -> str:
    """`template`, preceded by a system message holding `system` when the conversation has none."""
    if not system:
        return template
    head = ("{%- if not messages or messages[0]['role'] != 'system' %}"
            "{%- set messages = [{'role': 'system', 'content': " + jinja_literal(system) + "}] + messages %}"
            "{%- endif %}")
    out = head + template
    if len(out) > MAX_TEMPLATE_CHARS:
        raise FarensedError(f"the chat template with the system prompt is {len(out)} characters, over"
                            f" {MAX_TEMPLATE_CHARS}: shorten [generate].system")
    return out
