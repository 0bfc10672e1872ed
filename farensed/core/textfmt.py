"""Numbers and durations as text, the same in status, watch, report and compare (no imports: the
client's fastest verb uses it)."""

from __future__ import annotations


def fmt_num(x, fmt: str = "{:.4f}") -> str:
    """`x` through `fmt`; "-" when it is not known."""
    return "-" if x is None else fmt.format(x)


def fmt_secs(s: float | None, short: bool = False) -> str:
    """1h02m03s, or 2m05s under an hour; "-" when not known. `short` (the status table's ETA column):
    whole seconds cut down, and no seconds past an hour (1h02m)."""
    if s is None:
        return "-"
    m, sec = divmod(int(s) if short else int(round(s)), 60)
    h, m = divmod(m, 60)
    if h:
        return f"{h}h{m:02d}m" if short else f"{h}h{m:02d}m{sec:02d}s"
    return f"{m}m{sec:02d}s"
