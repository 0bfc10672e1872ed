"""File events on the spool (the watchdog library): only hints that wake the main loop (a periodic
rescan is the truth)."""

from __future__ import annotations

import threading
from pathlib import Path

from watchdog.events import FileSystemEventHandler
from watchdog.observers import Observer

NOISE = {"opened", "closed_no_write"}


class _Wake(FileSystemEventHandler):
    def __init__(self, event: threading.Event):
        self.event = event

    def on_any_event(self, ev):
        if ev.event_type not in NOISE:
            self.event.set()


def start(folders: list[Path], wake: threading.Event):
    """Watch the drop folder and the requests folder (not recursive); returns the observer or None."""
    obs = Observer()
    handler = _Wake(wake)
    for f in folders:
        obs.schedule(handler, str(f), recursive=False)
    try:
        obs.start()
    except OSError:  # e.g. inotify limits: the periodic rescan still works
        return None
    return obs
