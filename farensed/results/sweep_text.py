"""A sweep in words: its trials ranked on the metric (the same probe questions in every trial),
the winner with its settings (farensectl status SWEEP, compare SWEEP)."""

from __future__ import annotations

from farensed.core.errors import FarensedError
from farensed.core.paths import Home
from farensed.core.sweep_table import SweepTable, read


def load(home: Home, sweep_id: str) -> SweepTable:
    table = read(home, sweep_id)
    if table is None:
        raise FarensedError(f"sweep {sweep_id}: no trials yet ({home.root / 'sweeps' / sweep_id} is empty); the"
                            " daemon makes the first one when it takes the sweep")
    return table


def _value(table: SweepTable, v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.3f}" if table.metric == "answers" else f"{v:.4f}"


def _params(params: dict) -> str:
    return ", ".join(f"{k.split('.')[-1]}={v:.3g}" if isinstance(v, float) else f"{k.split('.')[-1]}={v}"
                     for k, v in params.items())


def metric_name(table: SweepTable) -> str:
    return "probe F1 (higher is better)" if table.metric == "answers" else "val loss (lower is better)"


def winner_line(table: SweepTable) -> str:
    win = next((t for t in table.trials if t.job_id == table.winner), None)
    if win is None:
        return "winner: none yet (no trial has finished)"
    settings = ", ".join(f"{k} = {v!r}" for k, v in win.params.items())
    return (f"winner: {win.job_id}, {metric_name(table).split(' (')[0]} {_value(table, win.value)} at step {win.step};"
            f" settings: {settings}")


def sweep_text(table: SweepTable, state: str | None = None) -> str:
    """The ranking table and the winner, for a terminal."""
    done = sum(t.state in ("done", "pruned", "failed", "cancelled") for t in table.trials)
    head = (f"sweep {table.id} ({table.name}): {table.method}, {done} of {table.trials_total} trials ended"
            + (f", {state}" if state else "") + f"; pruner {table.pruner}; ranked by {metric_name(table)},"
            " on the same probe questions in every trial")
    rows = [("rank", "trial", "state", "probe F1" if table.metric == "answers" else "val loss", "at step",
             "last eval", "settings")]
    for n, t in enumerate(table.ranked(), start=1):
        rows.append((str(n) if t.value is not None else "-", t.job_id, t.state, _value(table, t.value),
                     str(t.step) if t.step is not None else "-",
                     str(t.last_step) if t.last_step is not None else "-", _params(t.params)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join([head, *lines, winner_line(table)])
