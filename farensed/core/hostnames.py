"""What a job may name as a host (pure): an IP address, or a host name (optionally `user@`), never
anything that ssh or mlx.launch would read as an option. Used by the job schema and mlx's hostfile."""

from __future__ import annotations

import ipaddress
import re

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")  # always fullmatch: `$` would let a trailing newline in
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,31}")
# A hostfile's `envs` reach every rank's shell (mlx.launch exports them): only these names, and values
# of plain characters; LD_PRELOAD, PYTHONPATH or PATH from a file would run code of the file's choosing.
ENV_PREFIXES = ("MLX_", "NCCL_", "JACCL_", "OMP_", "OPENBLAS_", "MKL_", "CUDA_", "UCX_")
_ENV_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
_ENV_VALUE = re.compile(r"[A-Za-z0-9_.,:/+=@%-]{0,256}")
_DEVICE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


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
    if at and not _USER.fullmatch(user):
        raise ValueError(f"{value!r}: not a user name before @")
    if is_ip(host) or _HOST.fullmatch(host):
        return value
    raise ValueError(f"{value!r}: not an IP address or a host name (letters, digits, '-', '.'; no leading '-')")


def check_ip(value: str) -> str:
    if not is_ip(value):
        raise ValueError(f"{value!r}: not an IP address")
    return value


def check_env(entry: str) -> str:
    """`entry` if it is NAME=VALUE with a name mlx, NCCL or BLAS reads and a value of plain characters."""
    name, eq, value = entry.partition("=") if isinstance(entry, str) else ("", "", "")
    if not eq or not _ENV_NAME.fullmatch(name):
        raise ValueError(f"{entry!r}: not NAME=VALUE with an upper-case name")
    if not name.startswith(ENV_PREFIXES):
        raise ValueError(f"{entry!r}: {name} is not allowed; only names starting with {', '.join(ENV_PREFIXES)}")
    if not _ENV_VALUE.fullmatch(value):
        raise ValueError(f"{entry!r}: the value may hold only letters, digits and _.,:/+=@%- (at most 256)")
    return entry


def check_device(value: str) -> str:
    """An RDMA device name of a hostfile (jaccl): letters, digits and _.:- only."""
    if not isinstance(value, str) or not _DEVICE.fullmatch(value):
        raise ValueError(f"{value!r}: not an RDMA device name")
    return value
