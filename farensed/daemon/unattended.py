"""What lets a run be left alone: keep the Mac awake while a worker runs (caffeinate),
say when a job ends (notification + the user's hook command), pause on battery power."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading

import psutil

NOTIFY_ENV = "FARENSED_NOTIFY"  # auto | osascript | notify-send | off


def sleep_guard_wanted(setting: str) -> bool:
    return setting == "on" or (setting == "auto" and sys.platform == "darwin")


def start_sleep_guard(pid: int, setting: str, log) -> subprocess.Popen | None:
    """`caffeinate -i -w PID`: no idle sleep until the worker exits (the lid still sleeps the Mac)."""
    if not sleep_guard_wanted(setting):
        return None
    if shutil.which("caffeinate") is None:
        log.warning("sleep_guard_unavailable", why="caffeinate not found on PATH")
        return None
    proc = subprocess.Popen(["caffeinate", "-i", "-w", str(pid)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log.info("sleep_guard_started", worker_pid=pid, caffeinate_pid=proc.pid)
    return proc


def stop_sleep_guard(proc: subprocess.Popen | None) -> None:
    if proc is None:
        return
    if proc.poll() is None:  # caffeinate -w ends with the worker; this is for a worker killed hard
        proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()


def _applescript_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def notification_command(title: str, message: str, how: str) -> list[str] | None:
    """The command that shows a desktop notification, or None where there is none."""
    if how == "osascript":
        return ["osascript", "-e", f"display notification {_applescript_string(message)}"
                                   f" with title {_applescript_string(title)}"]
    if how == "notify-send":
        return ["notify-send", "--app-name=farensed", title, message]
    return None


def notifier() -> str:
    how = os.environ.get(NOTIFY_ENV, "auto")
    if how != "auto":
        return how
    if sys.platform == "darwin":
        return "osascript"
    return "notify-send" if shutil.which("notify-send") else "off"


def hook_env(rec, summary: str | None) -> dict[str, str]:
    return {**os.environ, "FARENSED_JOB_ID": rec.id, "FARENSED_JOB_NAME": rec.name, "FARENSED_JOB_STATE": rec.state,
            "FARENSED_OUTPUT_DIR": rec.output_dir or "", "FARENSED_REASON": rec.reason or "",
            "FARENSED_SUMMARY": summary or ""}


def _run_quietly(cmd, log, **kw) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)
        if proc.returncode:
            log.warning("notify_command_failed", command=str(cmd)[:200], code=proc.returncode,
                        stderr=proc.stderr.strip()[-300:])
    except (OSError, subprocess.TimeoutExpired) as e:
        log.warning("notify_command_failed", command=str(cmd)[:200], error=str(e))


def job_finished(rec, summary_path: str | None, hook: str | None, log) -> None:
    """Notification and hook for a job that reached done/failed/cancelled; never blocks the loop."""
    title = f"farensed: {rec.id} {rec.state}"
    message = rec.reason or ("trained; results in " + (rec.output_dir or "?"))
    cmds = []
    if (cmd := notification_command(title, message, notifier())) is not None:
        cmds.append((cmd, {}))
    if hook:
        cmds.append((hook, {"shell": True, "env": hook_env(rec, summary_path)}))
    for cmd, kw in cmds:
        threading.Thread(target=_run_quietly, args=(cmd, log), kwargs=kw, daemon=True).start()
    log.info("job_finished_notified", job_id=rec.id, state=rec.state, hook=bool(hook), commands=len(cmds))


def on_battery() -> bool | None:
    """True on battery power, False on AC, None with no battery (desktops, servers)."""
    try:
        b = psutil.sensors_battery()
    except (AttributeError, NotImplementedError):
        return None
    return None if b is None else not b.power_plugged


def battery_action(enabled: bool, battery: bool | None, running: bool, battery_paused: bool) -> str | None:
    """Pure policy: 'pause' the running job on battery, 'resume' battery-paused jobs on AC."""
    if not enabled or battery is None:
        return None
    if battery and running:
        return "pause"
    if not battery and battery_paused:
        return "resume"
    return None
