"""The dashboard's HTTP side (Starlette on uvicorn): static pages, a JSON API over data.py, and the
actions behind the token and a same-origin check.

Pages hold no data: their scripts fetch /api/... and build the DOM with textContent. Every JSON
answer escapes <, > and & so that even a browser sniffing it as HTML would find no markup.
"""

from __future__ import annotations

import hashlib
import json
import math
import socket
import time
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farensed import __version__
from farensed.core.errors import FarensedError
from farensed.core.paths import Home
from farensed.dashboard import actions, data, runpage, sweeps
from farensed.dashboard.access import TOKEN_HEADER, Policy, same_origin

STATIC = Path(__file__).parent / "static"
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8"}
PAGES = {"/": "queue.html", "/job/{job_id}": "job.html", "/sweep/{sweep_id}": "sweep.html",
         "/compare": "compare.html"}
MAX_BODY = 2 * 1024 * 1024
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
                               " connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none';"
                               " frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-resource-policy": "same-origin",
}


def _finite(obj):
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def json_bytes(obj) -> bytes:
    """JSON with <, > and & escaped (\\u003c...), NaN and infinities as null."""
    try:
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=str)
    except ValueError:
        text = json.dumps(_finite(obj), ensure_ascii=False, separators=(",", ":"), default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode("utf-8")


def answer(request: Request, payload, status: int = 200, tag: str | None = None) -> Response:
    """A JSON answer; 304 when the page already holds this version (ETag)."""
    if tag is not None and request.headers.get("if-none-match") == f'"{tag}"':
        return Response(status_code=304, headers={"etag": f'"{tag}"', "cache-control": "no-cache"})
    headers = {"cache-control": "no-cache"} | ({"etag": f'"{tag}"'} if tag else {})
    return Response(json_bytes(payload), status_code=status, media_type="application/json", headers=headers)


def error(request: Request, status: int, message: str) -> Response:
    return answer(request, {"error": message}, status)


class App:
    """The routes, bound to one home and one access policy."""

    def __init__(self, home: Home, policy: Policy):
        self.home, self.policy = home, policy
        # the package's static files, read once (~80 KB): each answer is one write, with its ETag
        self.files = {p.relative_to(STATIC).as_posix(): p.read_bytes() for p in STATIC.rglob("*") if p.is_file()}
        self.tags = {k: hashlib.blake2b(v, digest_size=8).hexdigest() for k, v in self.files.items()}

    def serve_file(self, request: Request, name: str) -> Response:
        if name not in self.files:
            return error(request, 404, f"no file {name!r}")
        tag = f'"{self.tags[name]}"'
        headers = {"cache-control": "no-cache", "etag": tag}
        if request.headers.get("if-none-match") == tag:
            return Response(status_code=304, headers=headers)
        kind = TYPES.get(Path(name).suffix, "text/plain; charset=utf-8")
        return Response(self.files[name], media_type=kind, headers=headers)

    def page(self, name: str):
        async def endpoint(request: Request) -> Response:
            return self.serve_file(request, name)
        return endpoint

    async def static(self, request: Request) -> Response:
        return self.serve_file(request, request.path_params["name"])

    def access(self, request: Request) -> dict:
        return {"actions": self.policy.can_act, "token_ok": self.policy.token_ok(request.headers.get(TOKEN_HEADER)),
                "loopback": self.policy.loopback, "version": __version__}

    async def queue(self, request: Request) -> Response:
        payload, tag = data.queue(self.home)
        acc = self.access(request)
        return answer(request, payload | {"access": acc}, tag=f"{tag}-{int(acc['token_ok'])}")

    async def daemon(self, request: Request) -> Response:
        return answer(request, data.daemon(self.home) | {"now": time.time(), "access": self.access(request)})

    async def job(self, request: Request) -> Response:
        found = data.job(self.home, request.path_params["job_id"])
        if found is None:
            return error(request, 404, f"no job {request.path_params['job_id']!r} in {self.home.spool}")
        payload, tag = found
        acc = self.access(request)
        return answer(request, payload | {"access": acc}, tag=f"{tag}-{int(acc['token_ok'])}")

    async def sweep(self, request: Request) -> Response:
        payload = sweeps.page(self.home, request.path_params["sweep_id"])
        if payload is None:
            return error(request, 404, f"no sweep {request.path_params['sweep_id']!r}: no job names it")
        return answer(request, payload)

    async def compare(self, request: Request) -> Response:
        ids = [i for i in request.query_params.getlist("job") if i][:4]
        found = [data.find(self.home, i) for i in ids]
        if len(ids) < 2 or any(f is None for f in found):
            missing = [i for i, f in zip(ids, found) if f is None]
            return error(request, 404, f"compare needs two known jobs (?job=A&job=B); not found: {missing or '-'}")
        return answer(request, runpage.compare(self.home, [f[0] for f in found]))

    def refusal(self, request: Request) -> Response | None:
        """Why an action is refused (read-only, no token, not same-origin, not JSON), else None."""
        if not self.policy.can_act:
            return error(request, 403, "this dashboard is read-only (started with --read-only)")
        if not self.policy.token_ok(request.headers.get(TOKEN_HEADER)):
            return error(request, 401, "actions need the dashboard token (farensectl dashboard --url)")
        if not same_origin(request.headers):
            return error(request, 403, "cross-origin request refused: actions come from the dashboard's own page")
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return error(request, 415, "actions are sent as application/json")
        return None

    async def act(self, request: Request) -> Response:
        if (refused := self.refusal(request)) is not None:
            return refused
        try:
            done = actions.request(self.home, request.path_params["verb"], request.path_params["job_id"])
        except actions.ActionRefused as e:
            return error(request, e.status, str(e))
        return answer(request, done)

    async def submit(self, request: Request) -> Response:
        if (refused := self.refusal(request)) is not None:
            return refused
        body = await request.body()
        try:
            form = json.loads(body) if len(body) <= MAX_BODY else None
            name, text = str(form["file_name"]), str(form["text"])
        except (ValueError, TypeError, KeyError):
            return error(request, 400, "send {\"file_name\": \"job.toml\", \"text\": \"...\"} (at most 2 MB)")
        try:
            done = await run_in_threadpool(actions.submit, self.home, name, text, bool(form.get("dry_run")))
        except actions.ActionRefused as e:
            return error(request, e.status, str(e))
        except FarensedError as e:
            return error(request, 500, str(e))
        return answer(request, done)

    async def no_icon(self, request: Request) -> Response:
        return Response(status_code=204)

    def routes(self) -> list:
        pages = [Route(path, self.page(name)) for path, name in PAGES.items()]
        return pages + [Route("/favicon.ico", self.no_icon),
            Route("/api/queue", self.queue), Route("/api/daemon", self.daemon), Route("/api/job/{job_id}", self.job),
            Route("/api/sweep/{sweep_id}", self.sweep), Route("/api/compare", self.compare),
            Route("/api/job/{job_id}/{verb}", self.act, methods=["POST"]),
            Route("/api/submit", self.submit, methods=["POST"]),
            Route("/static/{name:path}", self.static),
        ]


class Guard:
    """Every request: a Host this server answers to (no DNS rebinding), the token for the API when
    bound beyond loopback; every answer: the security headers (CSP without inline scripts)."""

    def __init__(self, app, policy: Policy):
        self.app, self.policy = app, policy

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        if not self.policy.allowed_host(headers.get("host", "")):
            return await self._refuse(send, 421, "this dashboard answers only to its own loopback address")
        if (scope["path"].startswith("/api/") and self.policy.needs_token_to_read()
                and not self.policy.token_ok(headers.get(TOKEN_HEADER))):
            return await self._refuse(send, 401, "this dashboard is not on loopback: every request needs the token")

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                h = MutableHeaders(scope=message)
                for k, v in SECURITY_HEADERS.items():
                    h.setdefault(k, v)
            await send(message)
        await self.app(scope, receive, send_with_headers)

    async def _refuse(self, send, status: int, message: str) -> None:
        body = json_bytes({"error": message})
        hdrs = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        hdrs += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
        await send({"type": "http.response.start", "status": status, "headers": hdrs})
        await send({"type": "http.response.body", "body": body})


def create_app(home: Home, policy: Policy):
    return Guard(Starlette(routes=App(home, policy).routes()), policy)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, or a clear error (port taken, address not here)."""
    try:
        family, kind, proto, _, _ = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on such sockets, and without it
        # each answer waits ~40 ms for a delayed ACK between its headers and its body (Nagle)
        sock = socket.socket(family, kind, proto or socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(64)
    except OSError as e:
        raise FarensedError(f"{host}:{port}: cannot listen there ({e.strerror or e}); pick another --port"
                            " or --host") from None
    sock.set_inheritable(True)
    return sock


def serve(home: Home, sock: socket.socket, policy: Policy) -> None:
    """Serve until SIGINT/SIGTERM (uvicorn's own handlers stop it cleanly)."""
    import uvicorn

    config = uvicorn.Config(create_app(home, policy), log_level="warning", access_log=False, lifespan="off",
                            server_header=False, date_header=False)
    uvicorn.Server(config).run(sockets=[sock])
