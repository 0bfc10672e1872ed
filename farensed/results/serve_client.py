"""`farensectl serve`'s work (no mlx): mlx_lm.server started on a checked command line, reported
ready once it has answered a first request, and stopped with the client."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request

from farensed.core.errors import FarensedError
from farensed.host.blas import worker_env
from farensed.serving import child
from farensed.serving.server_cmd import ServeSpec, base_url, server_argv

POLL_SECONDS = 0.5
WARM_UP_TIMEOUT = 1800.0  # a first answer waits for the model to load: minutes for a 7B from a slow disk


def free_port(host: str, port: int) -> int:
    """`port` if nothing listens there, or any free port for 0."""
    family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                      flags=socket.AI_PASSIVE)[0]
    with socket.socket(family, kind, proto) as s:
        try:
            s.bind(addr)
        except OSError as e:
            raise FarensedError(f"{host}:{port}: cannot listen there ({e.strerror}): choose another --port") from None
        return s.getsockname()[1]


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status
    except (urllib.error.URLError, OSError):
        return 0


def _warm_up(url: str) -> None:
    """One short answer: the server is ready only once its model is loaded."""
    body = json.dumps({"messages": [{"role": "user", "content": "ok"}], "max_tokens": 1}).encode()
    req = urllib.request.Request(f"{url}/chat/completions", data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=WARM_UP_TIMEOUT) as r:
            r.read()
    except (urllib.error.URLError, OSError) as e:
        raise FarensedError(f"mlx_lm.server did not answer a first request: {e}") from None


def wait_ready(proc, url: str) -> None:
    while _get(url.removesuffix("/v1") + "/health") != 200:
        if proc.poll() is not None:
            raise FarensedError(f"mlx_lm.server exited with code {proc.returncode} before it was ready"
                                " (its messages are above)")
        time.sleep(POLL_SECONDS)
    _warm_up(url)


def run_server(spec: ServeSpec, on_ready) -> int:
    """Start mlx_lm.server, call `on_ready(url, pid)` once it answers, then wait for it. The caller
    is inside child.stop_signals: a Ctrl-C or SIGTERM ends the server's process group too."""
    proc = child.start(server_argv(spec), worker_env())
    try:
        url = base_url(spec.host, spec.port)
        wait_ready(proc, url)
        on_ready(url, proc.pid)
        code = proc.wait()
    except BaseException:
        child.ignore_stop_signals()
        child.ended(proc)
        raise
    if code != 0:
        raise FarensedError(f"mlx_lm.server exited with code {code} (its messages are above)")
    return code
