"""Shared ending of the small mlx commands (infer, export): MLX out-of-memory becomes a clear
line and EXIT_OOM_EXHAUSTED, any other runtime error a line and EXIT_CRASH."""

from __future__ import annotations

import sys

from farensed.core.exitcodes import EXIT_CRASH, EXIT_OK, EXIT_OOM_EXHAUSTED
from farensed.memory import ladder


def run_mlx_command(fn, args, what: str) -> int:
    try:
        fn(args)
    except RuntimeError as e:
        if ladder.is_oom_message(str(e)):
            print(f"out of memory: {str(e).splitlines()[0]}", file=sys.stderr)
            return EXIT_OOM_EXHAUSTED
        print(f"{what} failed: {e}", file=sys.stderr)
        return EXIT_CRASH
    return EXIT_OK
