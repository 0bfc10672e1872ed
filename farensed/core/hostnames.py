"""What a job may name as a host (pure): an IP address, or a host name (optionally `user@`), never
anything that ssh or mlx.launch would read as an option. Used by the job schema and mlx's hostfile."""

from __future__ import annotations

import ipaddress
import re

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*\.?$")
_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,31}$")


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return False


def check_host(value: str) -> str:
    """`value` if it is an IP address or a valid host name (RFC 1123, optionally `user@host`); else ValueError."""
    if not isinstance(value, str) or not value or len(value) > 255:
        raise ValueError("a host must be an IP address or a host name")
    user, at, host = value.rpartition("@")
    if at and not _USER.match(user):
        raise ValueError(f"{value!r}: not a user name before @")
    if is_ip(host) or _HOST.match(host):
        return value
    raise ValueError(f"{value!r}: not an IP address or a host name (letters, digits, '-', '.'; no leading '-')")


def check_ip(value: str) -> str:
    if not is_ip(value):
        raise ValueError(f"{value!r}: not an IP address")
    return value
