"""farensectl install/uninstall/service: the rendered launchd agent and systemd unit, and the
exact launchctl/systemctl calls (recorded by fake commands on PATH; real ones are not here)."""

from __future__ import annotations

import json
import os
import plistlib
import stat
import subprocess
import sys
from pathlib import Path

import pytest

FAKE = """#!/bin/sh
echo "$0 $*" >> "{log}"
case "$*" in
  *print*) printf 'gui/501/com.farensed.daemon = {{\\n\\tstate = running\\n\\tpid = 4242\\n}}\\n' ;;
  *show*) printf 'LoadState=loaded\\nActiveState=active\\nSubState=running\\nMainPID=4242\\n' ;;
esac
"""


@pytest.fixture
def env(tmp_path):
    """A fake HOME and fake launchctl/systemctl that record their arguments."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    for name in ("launchctl", "systemctl"):
        (bin_dir / name).write_text(FAKE.format(log=log))
        (bin_dir / name).chmod(0o755)
    e = dict(os.environ, HOME=str(tmp_path / "user"), PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    (tmp_path / "farensed-home").mkdir()
    return e, log, tmp_path


def ctl(env, kind, *args):
    e = dict(env, FARENSED_SERVICE_PLATFORM=kind)
    return subprocess.run([sys.executable, "-m", "farensed.cli.main", *args], env=e, capture_output=True, text=True)


def _calls(log: Path) -> list[str]:
    return [" ".join([Path(line.split()[0]).name] + line.split()[1:]) for line in log.read_text().splitlines()]


def test_install_on_a_mac_writes_a_valid_launch_agent_and_bootstraps_it(env):
    e, log, tmp = env
    home = tmp / "farensed-home"
    # When farensectl install runs as on macOS
    proc = ctl(e, "launchd", "install", "--home", str(home))
    assert proc.returncode == 0, proc.stderr
    # Then the agent parses as a plist with the keys that make the service unattended
    plist_file = tmp / "user" / "Library" / "LaunchAgents" / "com.farensed.daemon.plist"
    agent = plistlib.loads(plist_file.read_bytes())
    assert agent["Label"] == "com.farensed.daemon" and agent["RunAtLoad"] is True
    assert agent["KeepAlive"] == {"SuccessfulExit": False}
    assert agent["ProcessType"] == "Interactive" and agent["ExitTimeOut"] >= 30
    assert agent["ProgramArguments"][1:] == ["run", "--home", str(home)]
    assert Path(agent["ProgramArguments"][0]).is_absolute() and Path(agent["ProgramArguments"][0]).exists()
    assert agent["EnvironmentVariables"]["FARENSED_HOME"] == str(home) == agent["WorkingDirectory"]
    assert agent["StandardErrorPath"].startswith(str(home)) and agent["ThrottleInterval"] > 0
    # And launchctl was called with the gui domain of this user
    uid = os.getuid()
    assert _calls(log)[-1] == f"launchctl bootstrap gui/{uid} {plist_file}"


def test_uninstall_and_service_status_on_a_mac(env):
    e, log, tmp = env
    ctl(e, "launchd", "install", "--home", str(tmp / "farensed-home"))
    status = ctl(e, "launchd", "service", "--json")
    assert status.returncode == 0 and '"running": true' in status.stdout and '"pid": 4242' in status.stdout
    assert ctl(e, "launchd", "uninstall").returncode == 0
    assert _calls(log)[-1] == f"launchctl bootout gui/{os.getuid()}/com.farensed.daemon"
    assert not (tmp / "user" / "Library" / "LaunchAgents" / "com.farensed.daemon.plist").exists()


def test_install_on_linux_writes_a_systemd_user_unit_and_enables_it(env):
    e, log, tmp = env
    home = tmp / "farensed-home"
    assert ctl(e, "systemd", "install", "--home", str(home)).returncode == 0
    unit = (tmp / "user" / ".config" / "systemd" / "user" / "farensed.service").read_text()
    assert f"run --home {home}" in unit and "Restart=on-failure" in unit and "KillMode=mixed" in unit
    assert "TimeoutStopSec=60" in unit and f"Environment=FARENSED_HOME={home}" in unit
    assert _calls(log) == ["systemctl --user daemon-reload", "systemctl --user enable --now farensed.service"]
    status = ctl(e, "systemd", "service")
    assert "installed" in status.stdout and "running, pid 4242" in status.stdout


def test_dry_run_prints_file_and_commands_and_changes_nothing(env):
    e, log, tmp = env
    proc = ctl(e, "launchd", "install", "--dry-run", "--home", str(tmp / "farensed-home"))
    assert proc.returncode == 0 and "<key>ProcessType</key>" in proc.stdout and "$ launchctl bootstrap" in proc.stdout
    assert not log.exists() and not (tmp / "user" / "Library").exists()


def test_install_with_the_dashboard_runs_it_as_a_service_beside_the_daemon(env):
    e, log, tmp = env
    home = tmp / "farensed-home"
    # When farensectl install --dashboard runs on Linux, then on a Mac
    assert ctl(e, "systemd", "install", "--dashboard", "--dashboard-port", "8777", "--home", str(home)).returncode == 0
    # Then a second user unit serves the dashboard of this home on loopback, next to the daemon's
    unit = (tmp / "user" / ".config" / "systemd" / "user" / "farensed-dashboard.service").read_text()
    assert f"dashboard --home {home} --port 8777" in unit and "Restart=on-failure" in unit
    assert Path(unit.split("ExecStart=")[1].split()[0]).name == "farensectl"
    assert _calls(log)[-1] == "systemctl --user enable --now farensed-dashboard.service"
    assert stat.S_IMODE((home / "dashboard.token").stat().st_mode) == 0o600  # made now: the first page can act
    assert ctl(e, "launchd", "install", "--dashboard", "--home", str(home)).returncode == 0
    agent = plistlib.loads((tmp / "user" / "Library" / "LaunchAgents" / "com.farensed.dashboard.plist").read_bytes())
    assert agent["ProgramArguments"][1:] == ["dashboard", "--home", str(home), "--port", "8765"]
    assert agent["Label"] == "com.farensed.dashboard" and agent["KeepAlive"] == {"SuccessfulExit": False}
    # And service shows both; uninstall removes both
    status = ctl(e, "systemd", "service", "--json")
    assert json.loads(status.stdout)["dashboard"]["installed"] is True
    assert ctl(e, "systemd", "uninstall").returncode == 0
    assert "systemctl --user disable --now farensed-dashboard.service" in _calls(log)
    assert not (tmp / "user" / ".config" / "systemd" / "user" / "farensed-dashboard.service").exists()
