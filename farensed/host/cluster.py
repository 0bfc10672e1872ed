"""The hosts of a data-parallel job (no mlx here): who runs which rank, which of them mlx.launch
reaches over ssh, and whether they answer. Shared by validate, doctor and the daemon."""

from __future__ import annotations

import ipaddress
import json
import socket
import subprocess
from pathlib import Path

import psutil
from pydantic import ValidationError

from farensed.core.atomic import atomic_write_text
from farensed.core.errors import FarensedError
from farensed.core.formats import HostfileHost, MlxHostfile
from farensed.core.hostnames import check_device, check_env, is_ip
from farensed.core.jobspec import Distributed
from farensed.core.paths import Home
from farensed.core.safe_read import NotRegular, TooLarge, read_bytes

LOOPBACK = "127.0.0.1"  # the one host mlx.launch starts without ssh
SSH_OPTIONS = ("-o", "BatchMode=yes", "-o", "ConnectTimeout=5")  # every ssh line ends its options with "--"
HOSTFILE_LIMIT = 1 << 20
HOSTFILE_BACKENDS = ("", "ring", "jaccl", "jaccl-ring", "mpi", "nccl")  # what mlx.launch accepts


class HostfileError(FarensedError):
    """The job's hostfile is missing or not in mlx's format."""


class HostGone(FarensedError):
    """A host of the job does not answer over ssh; the job waits (paused) instead of restarting."""


def read_hostfile(path: Path) -> MlxHostfile:
    """mlx's JSON hostfile: an object with `hosts` (and backend, envs) or a bare list of hosts."""
    try:
        data = json.loads(read_bytes(path, HOSTFILE_LIMIT).decode("utf-8"))
        hf = MlxHostfile.model_validate({"hosts": data} if isinstance(data, list) else data)
    except (NotRegular, TooLarge) as e:
        raise HostfileError(f"cannot read the hostfile: {e}") from None
    except OSError as e:
        raise HostfileError(f"{path}: cannot read the hostfile: {e.strerror}") from None
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        raise HostfileError(f"{path}: not an mlx hostfile: {where}: {msg}") from None
    except (ValueError, RecursionError) as e:
        raise HostfileError(f"{path}: not an mlx hostfile: {str(e).splitlines()[0]}") from None
    _check_launch_values(path, hf)
    return hf


def _check_launch_values(path: Path, hf: MlxHostfile) -> None:
    """What of the hostfile mlx.launch puts on a command line or into a rank's shell: checked here."""
    if hf.backend not in HOSTFILE_BACKENDS:
        raise HostfileError(f"{path}: backend {hf.backend!r} is not one of {', '.join(HOSTFILE_BACKENDS[1:])}")
    try:
        for i, entry in enumerate(hf.envs):
            where = f"envs.{i}"
            check_env(entry)
        for n, host in enumerate(hf.hosts):
            where = f"hosts.{n}.rdma"
            for dev in host.rdma:
                for name in [dev] if isinstance(dev, str) else dev or []:
                    check_device(name)
    except ValueError as e:
        raise HostfileError(f"{path}: not an mlx hostfile: {where}: {e}") from None


def write_checked_hostfile(hf: MlxHostfile, dest: Path) -> Path:
    """The checked hostfile, as mlx.launch reads it, written where the job runs: mlx.launch reads this
    copy, never the job's file (which could change between the check and the launch)."""
    atomic_write_text(dest, hf.model_dump_json(indent=2) + "\n")
    return dest


def hostfile_path(dist: Distributed, home: Home) -> Path | None:
    return home.resolve(dist.hostfile) if dist.hostfile else None


def rank_hosts(dist: Distributed, home: Home) -> list[HostfileHost]:
    """One entry per rank, rank 0 first, as mlx.launch will start them."""
    if dist.hostfile:
        return list(read_hostfile(hostfile_path(dist, home)).hosts)
    names = dist.hosts or [LOOPBACK]
    return [HostfileHost(ssh=h, ips=[h] if is_ip(h) else []) for h in names for _ in range(dist.processes)]


def needs_ssh(host: HostfileHost) -> bool:
    """mlx.launch runs a rank through ssh unless its host is exactly 127.0.0.1."""
    return host.ssh != LOOPBACK


def remote_names(hosts: list[HostfileHost]) -> list[str]:
    """The distinct hosts mlx.launch will ssh into, in rank order."""
    return list(dict.fromkeys(h.ssh for h in hosts if needs_ssh(h)))


def local_addresses() -> set[str]:
    names = {"localhost", socket.gethostname()}  # not getfqdn(): a DNS lookup can stall the daemon's intake
    for addrs in psutil.net_if_addrs().values():
        names |= {a.address.split("%")[0] for a in addrs if a.family in (socket.AF_INET, socket.AF_INET6)}
    return names


def is_this_machine(host: HostfileHost, local: set[str] | None = None) -> bool:
    """True when the name or one of the IPs is this machine (rank 0 must run here: it owns the run folder)."""
    local = local_addresses() if local is None else local
    for value in [host.ssh, *host.ips]:
        try:
            if ipaddress.ip_address(value).is_loopback:
                return True
        except ValueError:
            pass
        if value in local or value.split(".")[0] == socket.gethostname().split(".")[0]:
            return True
    return False


def unreachable(names: list[str], timeout: float = 15.0) -> dict[str, str]:
    """Hosts that do not answer `ssh HOST true` (asked all at once), each with ssh's own words."""
    procs = {}
    for name in names:
        try:
            procs[name] = subprocess.Popen(["ssh", *SSH_OPTIONS, "--", name, "true"], stdin=subprocess.DEVNULL,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        except OSError as e:
            procs[name] = e
    gone = {}
    for name, p in procs.items():
        if isinstance(p, OSError):
            gone[name] = f"cannot run ssh: {p.strerror}"
            continue
        try:
            _, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            gone[name] = f"no answer over ssh within {timeout:.0f} s"
            continue
        if p.returncode:
            gone[name] = (err.strip().splitlines() or [f"ssh exited {p.returncode}"])[-1]
    return gone
