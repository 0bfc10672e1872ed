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


def printable(text: str) -> str:
    """`text` fit for an argument or an environment value: a NUL (which no exec can pass) as \\x00."""
    return text.replace("\x00", "\\x00")


def hook_env(rec, summary: str | None) -> dict[str, str]:
    ours = {"FARENSED_JOB_ID": rec.id, "FARENSED_JOB_NAME": rec.name, "FARENSED_JOB_STATE": rec.state,
            "FARENSED_OUTPUT_DIR": rec.output_dir or "", "FARENSED_REASON": rec.reason or "",
            "FARENSED_SUMMARY": summary or ""}
    return {**os.environ, **{k: printable(v) for k, v in ours.items()}}


def _run_quietly(cmd, log, **kw) -> bool:
    """Run one notification or hook command; False (and a warning) if it could not run or failed."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)
    except Exception as e:  # noqa: BLE001 - nothing a command does may end the thread unlogged
        log.warning("notify_command_failed", command=str(cmd)[:200], error=str(e))
        return False
    if proc.returncode:
        log.warning("notify_command_failed", command=str(cmd)[:200], code=proc.returncode,
                    stderr=proc.stderr.strip()[-300:])
    return proc.returncode == 0


def _announce(job_id: str, state: str, cmds: list, log) -> None:
    ok = sum(_run_quietly(cmd, log, **kw) for cmd, kw in cmds)
    log.info("job_finished_notified", job_id=job_id, state=state, commands=len(cmds), succeeded=ok)


def job_finished(rec, summary_path: str | None, hook: str | None, log) -> None:
    """Notification and hook for a job that reached done/failed/cancelled, in a thread (never blocks
    the loop), which logs job_finished_notified once they have run."""
    title = printable(f"farensed: {rec.id} {rec.state}")
    message = printable(rec.reason or ("trained; results in " + (rec.output_dir or "?")))
    cmds = []
    if (cmd := notification_command(title, message, notifier())) is not None:
        cmds.append((cmd, {}))
    if hook:
        cmds.append((hook, {"shell": True, "env": hook_env(rec, summary_path)}))
    if cmds:
        threading.Thread(target=_announce, args=(rec.id, rec.state, cmds, log), daemon=True).start()


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
