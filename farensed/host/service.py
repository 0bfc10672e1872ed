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
DASHBOARD_PORT = 8765


@dataclass(frozen=True)
class Service:
    """One background service: its launchd label and systemd unit, and their templates in launchd/."""

    label: str
    unit: str
    plist_template: str
    unit_template: str


DAEMON = Service(LABEL, UNIT, "com.farensed.daemon.plist", "farensed.service")
DASHBOARD = Service("com.farensed.dashboard", "farensed-dashboard.service", "com.farensed.dashboard.plist",
                    "farensed-dashboard.service")  # `farensectl install --dashboard`


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


def farensed_executable(name: str = "farensed") -> Path:
    """A console script (farensed, farensectl) in this interpreter's environment, as an absolute path."""
    exe = Path(sys.executable).parent / name
    return exe if exe.exists() else Path(shutil.which(name) or exe)


def _fields(home: Home, service: Service, port: int) -> dict[str, str]:
    exe = farensed_executable()
    path = os.pathsep.join(dict.fromkeys([str(exe.parent), "/usr/local/bin", "/opt/homebrew/bin", "/usr/bin",
                                          "/bin", "/usr/sbin", "/sbin"]))
    return {"label": service.label, "farensed": str(exe), "farensectl": str(farensed_executable("farensectl")),
            "home": str(home.root), "path": path, "logs": str(home.logs), "exit_timeout": str(EXIT_TIMEOUT),
            "port": str(port)}


def render(kind: str, home: Home, service: Service = DAEMON, port: int = DASHBOARD_PORT) -> str:
    name = service.plist_template if kind == "launchd" else service.unit_template
    fields = _fields(home, service, port)
    if kind == "launchd":  # paths go inside XML
        fields = {k: _html_escape(v, quote=False) for k, v in fields.items()}  # &, <, > as XML wants
    text = Template((REPO_ROOT / "launchd" / name).read_text()).substitute(fields)
    if kind == "launchd":
        plistlib.loads(text.encode())  # refuse to install a plist launchd could not parse
    return text


def plan(home: Home, kind: str | None = None, service: Service = DAEMON, port: int = DASHBOARD_PORT) -> ServicePlan:
    """The file to write and the commands to run for one service (the daemon unless told)."""
    kind = kind or platform_kind()
    text = render(kind, home, service, port)
    label, unit = service.label, service.unit
    if kind == "launchd":
        domain = f"gui/{os.getuid()}"
        file = Path.home() / "Library" / "LaunchAgents" / f"{label}.plist"
        return ServicePlan(kind, file, text, [["launchctl", "bootstrap", domain, str(file)]],
                           [["launchctl", "bootout", f"{domain}/{label}"]], ["launchctl", "print", f"{domain}/{label}"])
    file = Path.home() / ".config" / "systemd" / "user" / unit
    ctl = ["systemctl", "--user"]
    return ServicePlan(kind, file, text, [ctl + ["daemon-reload"], ctl + ["enable", "--now", unit]],
                       [ctl + ["disable", "--now", unit]],
                       ctl + ["show", unit, "-p", "LoadState,ActiveState,SubState,MainPID"])


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
