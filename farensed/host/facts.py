"""What one host has for a data-parallel job, so farensectl doctor can say what differs.

`python -m farensed.host.facts --home DIR --model M --data D` prints it as one JSON line; doctor
runs it on every host of the job (over ssh, or directly for 127.0.0.1). No mlx import here:
versions come from the installed packages' metadata.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import shlex
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from farensed import __version__
from farensed.core.paths import Home
from farensed.host import blas
from farensed.host.cluster import LOOPBACK, SSH_OPTIONS

KEYS = ("farensed", "python", "platform", "mlx", "mlx-lm", "blas", "model", "data")
WHOLE_FILE = 16 * 1024 * 1024  # bigger files (weights) are hashed by size, first and last MiB
EDGE = 1024 * 1024


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def source_digest() -> str:
    """sha256 of farensed's own source: the same version string can hide an edited checkout."""
    root = Path(__file__).resolve().parents[1]  # the whole package
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:12]


def _file_digest(f: Path, h) -> None:
    size = f.stat().st_size
    h.update(f"{f.name}\0{size}\0".encode())
    with open(f, "rb") as fh:
        if size <= WHOLE_FILE:
            h.update(fh.read())
        else:
            h.update(fh.read(EDGE))
            fh.seek(size - EDGE)
            h.update(fh.read(EDGE))


def tree_digest(path: Path) -> str:
    """A short fingerprint of a file or folder (names, sizes, contents), or 'missing: PATH'."""
    if not path.exists():
        return f"missing: {path}"
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    h = hashlib.sha256()
    for f in files:
        _file_digest(f, h)
    return f"{h.hexdigest()[:12]} ({len(files)} files, {sum(f.stat().st_size for f in files) / 1e6:.1f} MB)"


def collect(home: Home, model: str, data: str) -> dict[str, str]:
    return {"farensed": f"{__version__} ({source_digest()})", "python": platform.python_version(),
            "platform": f"{platform.system()} {platform.machine()}", "mlx": _version("mlx"),
            "mlx-lm": _version("mlx-lm"), "blas": blas.inspect().in_use,
            "model": tree_digest(home.resolve(model)), "data": tree_digest(home.resolve(data))}


def compare(here: dict, there: dict, name: str) -> list[str]:
    """Each difference as 'KEY: VALUE here, VALUE on NAME' (pure)."""
    return [f"{k}: {here.get(k)} here, {there.get(k)} on {name}" for k in KEYS if here.get(k) != there.get(k)]


def probe_command(python: str, home: Path, model: str, data: str) -> list[str]:
    return [python, "-m", "farensed.host.facts", "--home", str(home), "--model", model, "--data", data]


def ask(name: str, python: str, home: Path, model: str, data: str, timeout: float = 60.0) -> dict | str:
    """The host's info, or why it could not be had (ssh's or the probe's last line)."""
    cmd = probe_command(python, home, model, data)
    if name != LOOPBACK:  # as mlx.launch does: every other name is reached over ssh
        cmd = ["ssh", *SSH_OPTIONS, "--", name, f"cd {shlex.quote(str(home))} && {shlex.join(cmd)}"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return f"no answer within {timeout:.0f} s"
    except OSError as e:
        return f"cannot run {cmd[0]}: {e.strerror}"
    if proc.returncode:
        return (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
    try:
        return json.loads(proc.stdout)
    except ValueError:
        return f"unreadable answer: {proc.stdout.strip()[:200]}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m farensed.host.facts", description=__doc__)
    ap.add_argument("--home", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    args = ap.parse_args(argv)
    json.dump(collect(Home.from_option(args.home), args.model, args.data), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
