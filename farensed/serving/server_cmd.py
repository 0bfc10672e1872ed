"""The mlx_lm.server command line for a job (pure): every value from the job or its run folder is
checked first and passed as one `--name=value` argument (so none can pass for an option), never
through a shell."""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from farensed.core.errors import FarensedError
from farensed.core.formats import ADAPTER_CONFIG, ADAPTERS

HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
HOST = re.compile(r"[A-Za-z0-9:][A-Za-z0-9.:-]*")  # never a leading "-"


@dataclass(frozen=True)
class ServeSpec:
    model: str  # a local model folder or a hub id
    adapters: Path | None
    host: str
    port: int
    chat_template: str | None  # the model's template with the job's system prompt first
    temperature: float
    max_tokens: int
    trust_remote_code: bool = False

    def with_adapters(self, folder: Path | None) -> ServeSpec:
        return replace(self, adapters=folder)


def checked_model(model: str) -> str:
    """An existing folder (made absolute) or a hub id 'org/name'."""
    if Path(model).is_dir():
        return str(Path(model).resolve())
    if HUB_ID.fullmatch(model):
        return model
    raise FarensedError(f"model {model!r}: not a model folder nor a hub id (org/name)")


def checked_adapters(folder: Path) -> Path:
    folder = folder.resolve()
    for name in (ADAPTERS, ADAPTER_CONFIG):
        if not (folder / name).is_file():
            raise FarensedError(f"{folder}: no {name}: not an adapter folder mlx-lm can load")
    return folder


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def checked_host(host: str, allow_remote: bool) -> str:
    """`host` if it is loopback, or another address the user explicitly allowed."""
    if not HOST.fullmatch(host):
        raise FarensedError(f"--host {host!r}: not a host name or IP address")
    if not is_loopback(host) and not allow_remote:
        raise FarensedError(f"--host {host} would let other machines reach the server: add --allow-remote"
                            " if that is what you want")
    return host


def _text(value: str, what: str) -> str:
    if "\x00" in value:
        raise FarensedError(f"the {what} holds a NUL character: it cannot be passed to mlx_lm.server")
    return value


def server_argv(spec: ServeSpec, python: str = sys.executable) -> list[str]:
    """`python -m mlx_lm server ...` for `spec`."""
    argv = [python, "-m", "mlx_lm", "server", f"--model={checked_model(spec.model)}", f"--host={spec.host}",
            f"--port={int(spec.port)}", f"--temp={float(spec.temperature)}", f"--max-tokens={int(spec.max_tokens)}"]
    if spec.adapters is not None:
        argv.append(f"--adapter-path={checked_adapters(spec.adapters)}")
    if spec.chat_template:
        argv.append(f"--chat-template={_text(spec.chat_template, 'chat template')}")
    if spec.trust_remote_code:
        argv.append("--trust-remote-code")
    return argv


def base_url(host: str, port: int) -> str:
    """The OpenAI base URL a client on this machine uses."""
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/v1"


def curl_example(url: str, question: str) -> str:
    body = json.dumps({"messages": [{"role": "user", "content": question}]}, ensure_ascii=False)
    return (f"curl {url}/chat/completions -H 'Content-Type: application/json' -d {shlex.quote(body)}")
