"""The figures of one run as (label, value) pairs: for the report page, compare and watch."""

from __future__ import annotations

from farensed.core.textfmt import fmt_num, fmt_secs
from farensed.memory.plan import count_splits
from farensed.results.rundata import RunData


def _last(rows, attr):
    vals = [getattr(r, attr) for r in rows if getattr(r, attr) is not None]
    return vals[-1] if vals else None


def _peak(data: RunData) -> float | None:
    vals = [r.peak_memory_gb for r in data.trains() if r.peak_memory_gb is not None]
    return max(vals) if vals else None


def split_rows(name: str) -> list[int]:
    """The micro-batches of one split as written in metrics rows: '4+4' -> [4, 4], '2x4' -> [2, 2, 2, 2]."""
    out: list[int] = []
    for part in name.split("+"):
        rows, _, times = part.partition("x")
        out += [int(rows)] * int(times or 1)
    return out


def mean_micro_batch(data: RunData) -> float | None:
    """The micro-batch (examples per forward pass) averaged over the steps taken: each step counts
    its examples over its micro-batches. The state's micro_batch is the longest steps' only."""
    counts = count_splits(r.splits for r in data.trains())
    per_step = [(sum(mbs) / len(mbs), n) for name, n in counts.items() if (mbs := split_rows(name))]
    steps = sum(n for _, n in per_step)
    return sum(m * n for m, n in per_step) / steps if steps else None


def figures(data: RunData) -> dict[str, float | int | str | None]:
    """Raw figures: the summary when the run finished, else what metrics and state say so far."""
    s, st, trains, evals = data.summary, data.state, data.trains(), data.evals()
    last = data.metrics[-1] if data.metrics else None
    return {
        "status": st.status if st else ("done" if s else "-"),
        "steps": s.steps if s else (st.step if st else (last.step if last else None)),
        "final train loss": s.final_train_loss if s else _last(trains, "train_loss"),
        "final val loss": s.final_val_loss if s else _last(evals, "val_loss"),
        "best val loss": s.best_val_loss if s else (st.best_val_loss if st else None),  # the best adapters'
        "lowest val loss": min((r.val_loss for r in evals), default=None),
        "best step": s.best_step if s else (st.best_step if st else None),
        "best probe F1": s.best_score if s else (st.best_score if st else None),
        "best by": _best_by(data),
        "probe time": s.probe_seconds if s else _probe_time(data),
        "time": s.seconds if s else (last.elapsed if last else None),
        "load time": s.load_seconds if s else (st.load_seconds if st else None),
        "compile time": s.compile_seconds if s else (st.compile_seconds if st else None),
        "tokens": s.tokens if s else (last.tokens_seen if last else None),
        # the summary's tokens over the whole training time (evals and probes in it); while it runs, the
        # last log window's step tokens/s, as status shows it
        "tokens/s overall" if s else "step tokens/s": s.tokens_per_sec if s else _last(trains, "tokens_per_sec"),
        "peak memory GB": _peak(data),
        "micro-batch, mean over steps": mean_micro_batch(data),
        "longest steps' micro-batch x acc": f"{st.micro_batch}x{st.grad_accumulation}" if st else None,
        "downshifts": len(st.downshifts) if st else 0,
        "restarts": s.restarts if s else (st.restarts if st else 0),
        "checkpoints": len(data.checkpoints),
        "continued from": _parent(data),
    }


def _parent(data: RunData) -> str | None:
    init = data.spec.init if data.spec else None
    if init is None:
        return None
    return f"{init.job or init.path} ({init.adapters}, after step {init.steps_before})"


def _best_by(data: RunData) -> str | None:
    plan = (data.state.probe if data.state else None) or (data.summary.probe if data.summary else None)
    return None if plan is None else ("probe F1" if plan.select == "answers" else "val loss")


def _probe_time(data: RunData) -> float | None:
    probes = [r.probe_seconds for r in data.probes() if r.probe_seconds is not None]
    return sum(probes) if probes else None


def _show(key: str, v) -> str:
    if v is None:
        return "-"
    if key.endswith("time"):
        return fmt_secs(v)
    if "tokens/s" in key:
        return f"{v:.0f}"
    if key.startswith("micro-batch, mean"):
        return f"{v:.2f}"
    if isinstance(v, float):
        return fmt_num(v, "{:.3f}" if "GB" in key else "{:.4f}")
    return str(v)


def rows(data: RunData) -> list[tuple[str, str]]:
    """The figures formatted for display."""
    return [(k, _show(k, v)) for k, v in figures(data).items()]
