"""structlog set-up: JSON lines to a file or stderr, readable console output on a TTY."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import structlog


def configure(json_file: Path | None = None, console: bool | None = None, level: int = logging.INFO) -> str | None:
    """JSON lines to `json_file` (or stderr when None); pretty console output too when on a TTY.
    A log file that cannot be opened is not fatal: lines go to stderr, and the reason is returned."""
    console = sys.stderr.isatty() if console is None else console
    shared = [structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso", utc=True)]
    handlers: list[logging.Handler] = []
    problem = None
    if json_file is not None:
        try:
            json_file.parent.mkdir(parents=True, exist_ok=True)
            handlers.append(_handler(logging.FileHandler(json_file, encoding="utf-8"),
                                     structlog.processors.JSONRenderer()))
        except OSError as e:
            problem, json_file = f"{json_file}: cannot open the log file ({e.strerror}); logging to stderr", None
    if console:
        handlers.append(_handler(logging.StreamHandler(sys.stderr), structlog.dev.ConsoleRenderer(colors=True)))
    elif json_file is None:
        handlers.append(_handler(logging.StreamHandler(sys.stderr), structlog.processors.JSONRenderer()))
    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    return problem


def _handler(h: logging.Handler, renderer) -> logging.Handler:
    h.setFormatter(structlog.stdlib.ProcessorFormatter(processor=renderer))
    return h


def get(**bound):
    return structlog.get_logger("farensed").bind(**bound)
