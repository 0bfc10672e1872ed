"""Running `python -m farensed.worker.infer` from the client: streamed text or parsed JSON answers."""

from __future__ import annotations

import codecs
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from farensed.core.errors import FarensedError
from farensed.core.exitcodes import EXIT_OOM_EXHAUSTED
from farensed.host.blas import worker_env
from farensed.memory.ladder import is_oom_message
from farensed.results.adapters import Target

TIGHT = ("not enough memory to load {label} ({model}): another job may be training; "
         "wait for it, pause it (farensectl pause), or lower --max-tokens")


def infer_cmd(target: Target, adapters: Path | None, prompts: list[str], max_tokens: int, temp: float,
              as_json: bool = False, messages: Path | None = None) -> list[str]:
    """The infer worker's command line: prompts after `--`, chats (ask -n) in a JSONL file."""
    cmd = [sys.executable, "-m", "farensed.worker.infer", "--model", target.model,
           "--max-tokens", str(max_tokens), "--temp", str(temp)]
    if adapters is not None:
        cmd += ["--adapter-path", str(adapters)]
    if target.trust_remote_code:
        cmd.append("--trust-remote-code")
    if target.system:
        cmd += ["--system", target.system]
    if as_json:
        cmd.append("--json")
    if messages is not None:
        cmd += ["--messages", str(messages)]
    return cmd + ["--", *prompts]


def _check(code: int, err: str, target: Target) -> None:
    """Turn a failed inference process into one clear error."""
    if code == 0:
        return
    if code == EXIT_OOM_EXHAUSTED or is_oom_message(err) or code == -9:
        raise FarensedError(TIGHT.format(label=target.label, model=target.model))
    last = (err.strip().splitlines() or [f"exit code {code}"])[-1]
    raise FarensedError(f"asking {target.label} adapters of {target.model} failed: {last}")


def stream(cmd: list[str], target: Target, write) -> None:
    """Run `cmd`, passing its stdout to `write` as it arrives; stderr kept for the error message."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=worker_env())
        text = codecs.getincrementaldecoder("utf-8")(errors="replace")  # a chunk may end mid-character
        try:
            while chunk := os.read(proc.stdout.fileno(), 256):
                write(text.decode(chunk))
        finally:
            proc.stdout.close()
            code = proc.wait()
        err.seek(0)
        _check(code, err.read().decode("utf-8", errors="replace"), target)


def answers(cmd: list[str], target: Target) -> list[str]:
    """Run `cmd` (with --json) and return the answers in prompt order."""
    proc = subprocess.run(cmd, capture_output=True, text=True, env=worker_env())
    _check(proc.returncode, proc.stderr, target)
    return [json.loads(line)["answer"] for line in proc.stdout.splitlines() if line.startswith("{")]
