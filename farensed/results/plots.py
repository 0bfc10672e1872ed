"""The report's PNGs (matplotlib, Agg): loss curves, learning rate, memory and throughput.

Downshift, restart and checkpoint steps are drawn as vertical lines on every plot.
"""

from __future__ import annotations

from pathlib import Path

from farensed.core import schedule
from farensed.core.formats import TARGETS, AnswerScores
from farensed.results.adapters import best_about
from farensed.results.rundata import RunData

PLOTS_DIR = "plots"
FILES = ("loss_curves.png", "learning_rate.png", "memory_usage.png")
SCORES_FILE = "answer_scores.png"  # only for a run that has scored answers
PROBE_FILE = "answer_probe.png"  # only for a run whose evals answered the probe questions
_EVENTS = (("checkpoint", "#9e9e9e", ":"), ("downshift", "#d62728", "--"), ("restart", "#ff7f0e", "-."))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display over SSH or under the daemon
    import matplotlib.pyplot as plt

    return plt


def event_steps(data: RunData) -> dict[str, list[int]]:
    return {"checkpoint": data.checkpoint_steps(), "downshift": data.downshift_steps(),
            "restart": data.restart_steps}


def mark_events(ax, data: RunData) -> None:
    """Vertical lines at event steps, each kind labelled once for the legend."""
    steps = event_steps(data)
    for kind, color, style in _EVENTS:
        for i, step in enumerate(steps[kind]):
            ax.axvline(step + data.offset, color=color, linestyle=style, linewidth=1.0, alpha=0.8,
                       label=f"{kind}" if i == 0 else None)


def _series(rows, attr: str, offset: int = 0) -> tuple[list[int], list[float]]:
    pts = [(r.step + offset, getattr(r, attr)) for r in rows if getattr(r, attr) is not None]
    return [p[0] for p in pts], [p[1] for p in pts]


def ancestors(data: RunData) -> list[RunData]:
    """The runs this one continued, oldest first (each counts its steps on from its own parent)."""
    out, run = [], data.parent
    while run is not None:
        out.insert(0, run)
        run = run.parent
    return out


def plot_parents(ax, data: RunData, pick, attr: str, mark: bool = True) -> None:
    """The parents' curves in grey up to where this run took over, so a continued job's plot goes on."""
    for run in ancestors(data):
        until = data.offset
        rows = [r for r in pick(run) if r.step + run.offset <= until]
        ax.plot(*_series(rows, attr, run.offset), color="0.6", marker=".", linewidth=1,
                label=f"{attr.replace('_', ' ')}, {run.run_dir.name} (parent)")
    if data.offset and mark:
        ax.axvline(data.offset, color="0.4", linestyle=":", linewidth=1, label="continued here")


def _finish(fig, ax, data: RunData, title: str, ylabel: str, path: Path) -> Path:
    mark_events(ax, data)
    ax.set_title(f"{data.name}: {title}")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def loss_plot(data: RunData, path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    plot_parents(ax, data, RunData.trains, "train_loss")
    plot_parents(ax, data, RunData.evals, "val_loss", mark=False)
    ax.plot(*_series(data.trains(), "train_loss", data.offset), marker=".", label="train loss")
    ax.plot(*_series(data.evals(), "val_loss", data.offset), marker="o", label="validation loss")
    st = data.state
    if st and st.best_val_loss is not None and st.best_step is not None:
        ax.plot([st.best_step + data.offset], [st.best_val_loss], "*", color="gold", markersize=14, markeredgecolor="k",
                label=best_about(data))
    try:
        return _finish(fig, ax, data, "loss", "loss", path)
    finally:
        plt.close(fig)


def probe_plot(data: RunData, path: Path) -> Path:
    """The probe's F1 (solid) and exact match (dashed) at every eval, per set, the best starred."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    rows = data.probes()
    plan = data.state.probe if data.state else None
    names = {s.field: f"{s.name} ({s.questions})" for s in plan.sets} if plan else {}
    for field, color in (("probe", "#1f77b4"), ("probe_valid", "#d62728")):
        if any(getattr(r, f"{field}_f1") is not None for r in rows):
            name = names.get(field, field)
            ax.plot(*_series(rows, f"{field}_f1", data.offset), marker="o", color=color, label=f"F1, {name}")
            ax.plot(*_series(rows, f"{field}_exact", data.offset), linestyle="--", color=color,
                    label=f"exact match, {name}")
    plot_parents(ax, data, RunData.probes, "probe_f1")
    st = data.state
    if st and st.best_step is not None and st.best_score is not None:
        ax.plot([st.best_step + data.offset], [st.best_score], "*", color="gold", markersize=14, markeredgecolor="k",
                label=best_about(data))
    ax.set_ylim(0, 1.05)
    try:
        return _finish(fig, ax, data, "answers to the probe questions at every eval", "score", path)
    finally:
        plt.close(fig)


def schedule_points(data: RunData) -> tuple[list[int], list[float]] | None:
    """The job's learning-rate schedule from step 0 to its last step (warm-up included), computed from
    job.toml as the worker computes it; None without a readable job file or a step count."""
    total = (data.summary.steps if data.summary else 0) or (data.state.total_steps if data.state else 0)
    if data.spec is None or not total:
        return None
    return schedule.curve(data.spec.training, total)


def lr_plot(data: RunData, path: Path) -> Path:
    """The schedule as a line from step 0 (the warm-up shows), the rates logged as points on it."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.5))
    if (planned := schedule_points(data)) is not None:
        steps, rates = planned
        ax.plot([s + data.offset for s in steps], rates, color="#2ca02c", linewidth=1.2,
                label="schedule (from job.toml)")
    ax.plot(*_series(data.trains(), "learning_rate", data.offset), marker=".", linestyle="none", color="#1b5e20",
            label="logged")
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    try:
        return _finish(fig, ax, data, "learning rate", "learning rate", path)
    finally:
        plt.close(fig)


def memory_plot(data: RunData, path: Path) -> Path:
    """Two panels sharing the step axis: memory (active, peak) above, tokens/s below."""
    plt = _pyplot()
    fig, (mem, tps) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    rows = data.trains()
    mem.plot(*_series(rows, "active_memory_gb"), marker=".", label="active memory")
    mem.plot(*_series(rows, "peak_memory_gb"), marker=".", label="peak memory")
    budget = data.spec.memory.budget_gb if data.spec else 0
    if budget:
        mem.axhline(budget, color="k", linestyle="--", linewidth=0.8, label=f"budget {budget} GB")
    mem.set_ylim(bottom=0)
    mem.set_ylabel("GB")
    mem.set_title(f"{data.name}: memory and throughput")
    mem.grid(True, alpha=0.3)
    mark_events(mem, data)
    mem.legend(loc="best", fontsize=8)
    tps.plot(*_series(rows, "tokens_per_sec"), marker=".", color="#9467bd", label="tokens/s")
    try:
        return _finish(fig, tps, data, "throughput", "tokens/s", path)
    finally:
        plt.close(fig)


def scores_plot(scores: AnswerScores, title: str, path: Path) -> Path:
    """Bars of F1 and exact match per model (base, best, final), held-out and job prompts side by side."""
    plt = _pyplot()
    groups = [(f"held-out ({scores.examples})", scores.means), ("job prompts", scores.prompt_means)]
    groups = [(name, means) for name, means in groups if means]
    fig, axes = plt.subplots(1, len(groups), figsize=(4.5 * len(groups) + 1, 4), squeeze=False)
    for ax, (name, means) in zip(axes[0], groups):
        models = [t for t in TARGETS if t in means]
        xs = range(len(models))
        for offset, metric, color in ((-0.2, "f1", "#1f77b4"), (0.2, "exact_match", "#ff7f0e")):
            vals = [getattr(means[t], metric) for t in models]
            bars = ax.bar([x + offset for x in xs], vals, width=0.4, color=color,
                          label="F1" if metric == "f1" else "exact match")
            ax.bar_label(bars, fmt="%.2f", fontsize=8)
        ax.set_xticks(list(xs), models)
        ax.set_ylim(0, 1.1)
        ax.set_title(name)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    fig.suptitle(f"{title}: answers against the reference")
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=110)
        return path
    finally:
        plt.close(fig)


def render_all(data: RunData, scores: AnswerScores | None = None) -> list[Path]:
    """Write the PNGs into <run>/plots/ (the scores chart when there are scores) and return their paths."""
    out = data.run_dir / PLOTS_DIR
    out.mkdir(exist_ok=True)
    makers = (loss_plot, lr_plot, memory_plot)
    paths = [make(data, out / name) for make, name in zip(makers, FILES)]
    if data.probes():
        paths.append(probe_plot(data, out / PROBE_FILE))
    if scores is not None and (scores.means or scores.prompt_means):
        paths.append(scores_plot(scores, data.name, out / SCORES_FILE))
    return paths
