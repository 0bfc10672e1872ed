"""check_power: with pause_on_battery, a running job pauses at a checkpoint when the machine
goes on battery, and battery-paused jobs go back to the queue on AC power."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from farensed.daemon.unattended import battery_action, on_battery
from farensed.daemon.worker_process import ask_stop

if TYPE_CHECKING:
    from farensed.daemon.loop import Daemon


def check_power(d: Daemon) -> None:
    if not d.cfg.pause_on_battery:
        return
    battery = on_battery()
    d.on_battery = bool(battery)
    w = d.worker
    held = [r for r in d.records.values() if r.state == "paused" and r.paused_by == "battery"]
    action = battery_action(True, battery, w is not None and w.stop_sent_at is None, bool(held))
    if action == "pause":
        d.log.info("on_battery_pausing", job_id=w.job_id)
        d.save(d.records[w.job_id], stop_for="battery")
        ask_stop(w, time.monotonic())
    elif action == "resume":
        for rec in held:
            d.move(rec, "queued", "back on AC power", paused_by=None)
