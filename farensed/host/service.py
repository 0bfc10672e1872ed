"""The background service: render the launchd agent (macOS) or systemd user unit (Linux)
from the templates in launchd/, and the exact launchctl/systemctl commands to run."""

from __future__ import annotations

import os
import plistlib
import shutil
import subprocess
import sys
from dataclasses import dataclass
from html import escape as _html_escape
from pathlib import Path
from string import Template

from farensed.core.errors import FarensedError
from farensed.core.paths import REPO_ROOT, Home

LABEL = "com.farensed.daemon"
UNIT = "farensed.service"
EXIT_TIMEOUT = 60  # seconds for a checkpoint after SIGTERM; launchd's default is 20
PLATFORM_ENV = "FARENSED_SERVICE_PLATFORM"  # launchd | systemd, to render the other one


@dataclass(frozen=True)
class ServicePlan:
    kind: str  # "launchd" or "systemd"
    file: Path  # where the rendered file goes
    text: str
    install: list[list[str]]
    uninstall: list[list[str]]
    status: list[str]


def platform_kind() -> str:
    return os.environ.get(PLATFORM_ENV) or ("launchd" if sys.platform == "darwin" else "systemd")


def farensed_executable() -> Path:
    """The daemon's console script in this interpreter's environment, as an absolute path."""
    exe = Path(sys.executable).parent / "farensed"
    return exe if exe.exists() else Path(shutil.which("farensed") or exe)


def _fields(home: Home) -> dict[str, str]:
    exe = farensed_executable()
    path = os.pathsep.join(dict.fromkeys([str(exe.parent), "/usr/local/bin", "/opt/homebrew/bin", "/usr/bin",
                                          "/bin", "/usr/sbin", "/sbin"]))
    return {"label": LABEL, "farensed": str(exe), "home": str(home.root), "path": path,
            "logs": str(home.logs), "exit_timeout": str(EXIT_TIMEOUT)}


def render(kind: str, home: Home) -> str:
    name = "com.farensed.daemon.plist" if kind == "launchd" else "farensed.service"
    fields = _fields(home)
    if kind == "launchd":  # paths go inside XML
        fields = {k: _html_escape(v, quote=False) for k, v in fields.items()}  # &, <, > as XML wants
    text = Template((REPO_ROOT / "launchd" / name).read_text()).substitute(fields)
    if kind == "launchd":
        plistlib.loads(text.encode())  # refuse to install a plist launchd could not parse
    return text


def plan(home: Home, kind: str | None = None) -> ServicePlan:
    kind = kind or platform_kind()
    text = render(kind, home)
    if kind == "launchd":
        domain = f"gui/{os.getuid()}"
        file = Path.home() / "Library" / "LaunchAgents" / f"{LABEL}.plist"
        return ServicePlan(kind, file, text, [["launchctl", "bootstrap", domain, str(file)]],
                           [["launchctl", "bootout", f"{domain}/{LABEL}"]], ["launchctl", "print", f"{domain}/{LABEL}"])
    file = Path.home() / ".config" / "systemd" / "user" / UNIT
    ctl = ["systemctl", "--user"]
    return ServicePlan(kind, file, text, [ctl + ["daemon-reload"], ctl + ["enable", "--now", UNIT]],
                       [ctl + ["disable", "--now", UNIT]],
                       ctl + ["show", UNIT, "-p", "LoadState,ActiveState,SubState,MainPID"])


def run_command(cmd: list[str]) -> subprocess.CompletedProcess:
    if shutil.which(cmd[0]) is None:
        raise FarensedError(f"running {' '.join(cmd)}: {cmd[0]} not found on PATH")
    return subprocess.run(cmd, capture_output=True, text=True)


def parse_status(kind: str, out: str, returncode: int) -> dict:
    """{'loaded': bool, 'running': bool, 'pid': int|None} from launchctl print / systemctl show."""
    if kind == "launchd":
        fields = dict(line.strip().split(" = ", 1) for line in out.splitlines() if " = " in line)
        pid = fields.get("pid")
        return {"loaded": returncode == 0, "running": fields.get("state") == "running",
                "pid": int(pid) if pid and pid.isdigit() else None}
    fields = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    pid = int(fields.get("MainPID", "0") or 0)
    return {"loaded": fields.get("LoadState") == "loaded", "running": fields.get("ActiveState") == "active",
            "pid": pid or None}
