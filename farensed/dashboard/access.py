"""Who may do what: the home's dashboard token (mode 0600) and the checks every request passes.

Reading is open on loopback; acting (pause, cancel, submit...) needs the token AND a same-origin
request, so a page from another site cannot act even in a browser that holds the token. Bound to
anything but loopback, every API request needs the token.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from farensed.core.atomic import atomic_write_text
from farensed.core.errors import FarensedError
from farensed.core.paths import Home

TOKEN_FILE = "dashboard.token"
TOKEN_HEADER = "x-farensed-token"  # a custom header: a cross-site form or <img> cannot send it
LOOPBACK_NAMES = ("localhost",)


def token_path(home: Home) -> Path:
    return home.root / TOKEN_FILE


def read_token(home: Home) -> str | None:
    """The home's token, or None when none was made yet. Refuses a token others could read."""
    path = token_path(home)
    try:
        st = path.stat()
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise FarensedError(f"{path}: cannot read the dashboard token: {e}") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise FarensedError(f"{path}: the dashboard token is readable by other users"
                            f" ({stat.filemode(st.st_mode)}); run: chmod 600 {path}")
    return text or None


def ensure_token(home: Home) -> str:
    """The home's token, made (32 random bytes, mode 0600) the first time."""
    token = read_token(home)
    if token is None:
        token = secrets.token_urlsafe(32)
        home.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(token_path(home), token + "\n", mode=0o600)
        os.chmod(token_path(home), 0o600)  # whatever the umask: never group or world readable
    return token


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Policy:
    """What the running dashboard accepts: bound host and port, the home's token (None: none made,
    on loopback read-only), and whether actions are refused even with it."""

    host: str
    port: int
    token: str | None
    read_only: bool = False

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)

    @property
    def can_act(self) -> bool:
        return self.token is not None and not self.read_only

    def allowed_host(self, host_header: str) -> bool:
        """Loopback binds answer only to loopback names (a DNS-rebinding page gets nothing)."""
        if not self.loopback:
            return bool(host_header)
        name, port = split_host(host_header)
        return is_loopback(name) and port == self.port

    def token_ok(self, given: str | None) -> bool:
        return self.token is not None and given is not None and hmac.compare_digest(given, self.token)

    def needs_token_to_read(self) -> bool:
        return not self.loopback


def split_host(host_header: str) -> tuple[str, int]:
    """("127.0.0.1", 8765) from "127.0.0.1:8765"; "[::1]:80" and a bare name (port 80) too."""
    name, sep, port = host_header.rpartition(":")
    if not sep or name.count(":") and not name.endswith("]"):  # no port, or a bare IPv6 address
        return host_header, 80
    return name, int(port) if port.isdigit() else -1


def same_origin(headers) -> bool:
    """The request comes from a page of this server: Origin is http://<Host>, and the browser
    does not call it cross-site (Sec-Fetch-Site, where the browser sends it)."""
    origin, host = headers.get("origin"), headers.get("host")
    if not origin or not host or origin != f"http://{host}":
        return False
    return headers.get("sec-fetch-site", "same-origin") == "same-origin"
