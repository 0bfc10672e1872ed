"""Micro-batches by memory (pure): a step's examples split so that each micro-batch fits.

Memory is spent per token, not per example: a micro-batch allocates rows x padded width
tokens. The worker measures peaks on the job's own micro-batches (memory.py); between and
below measured sizes a micro-batch is predicted to need what the next larger measured one
did, above them a fitted line adds per_token for each further token, and sizes between the
largest that fitted and the smallest that did not are capped (token_cap). No single line is
trusted: on CUDA the peak is not linear in tokens (measured on an H200: 512 tokens 10.6 GiB,
768 13.8, 1024 13.4-13.9). A step keeps its examples, in their order; the split only decides
where micro-batches end: short steps wide, long steps narrow. Every function here is a plain
function of its arguments, so a resumed run splits the same way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from farensed.core.formats import Downshift, MemoryMode, MemoryModel, ProbePoint
from farensed.core.units import GIB

PAD_TO = 32  # inputs are padded to a multiple of this: fewer distinct shapes for mx.compile
MARGIN = 0.05  # plans fill the budget less this share: room for what the probe did not see
# MLX's own memory limit, as a share of the budget, on a GPU: past it MLX makes the host wait for
# queued work to finish before it allocates more, so a queued micro-batch no longer adds its
# buffers on top of a running one. Below the planned share, so that what MLX holds the host to
# fits the plan. Measured on an H200, two micro-batches of 1024 tokens queued: 15.0 GiB without,
# 10.8 GiB with the limit at 10.8, in the same time. Not on a CPU: there the waits can cost more
# than the memory saves (demo model with OpenBLAS, two queued 4 x 256 micro-batches: 0.39 s
# throttled, 0.19 s not).
GPU_LIMIT = 0.90
PREFER_PLAIN = 1.15  # checkpointing only when estimated this much faster: its times are the noisier
CHECKPOINT_COST = 1.25  # checkpointing recomputes every block's forward: at least this much time a token


def mlx_limit_bytes(budget_bytes: int, gpu: bool) -> int:
    """The memory limit to give MLX for a budget (see GPU_LIMIT)."""
    return int(budget_bytes * (GPU_LIMIT if gpu else 1.0))


def padded_width(longest: int, max_seq_length: int) -> int:
    """Input width of a micro-batch whose longest example has `longest` tokens."""
    return min(PAD_TO * math.ceil(max(longest - 1, 1) / PAD_TO), max_seq_length)


def mode(model: MemoryModel, gc: bool | None = None) -> MemoryMode | None:
    gc = model.grad_checkpoint if gc is None else gc
    return next((m for m in model.modes if m.grad_checkpoint == gc), None)


def predict(m: MemoryMode, tokens: int) -> float | None:
    """Predicted peak bytes of a micro-batch of `tokens`, None when the mode was not measured:
    the most any measured micro-batch up to the next larger measured one peaked at (below the
    smallest, the line when it says less); above the largest, its peak plus per_token a token."""
    if m.base_bytes is None or m.per_token_bytes is None:
        return None
    line = m.base_bytes + m.per_token_bytes * tokens
    pts = sorted((p.rows * p.width, p.peak_bytes) for p in m.points)
    if not pts:
        return line
    if tokens <= pts[0][0]:
        return min(line, float(pts[0][1]))
    upto = next((t for t, _ in pts if t >= tokens), None)
    if upto is not None:
        return float(max(peak for t, peak in pts if t <= upto))
    return max(peak for _, peak in pts) + m.per_token_bytes * (tokens - pts[-1][0])


def line(m: MemoryMode, tokens: int) -> float:
    """The fitted line alone (0 when not measured): what the probe trusts before measuring a size."""
    return (m.base_bytes or 0.0) + (m.per_token_bytes or 0.0) * tokens


def fits(model: MemoryModel, rows: int, width: int, gc: bool | None = None) -> bool:
    m = mode(model, gc)
    if m is None or rows > model.rows_cap:
        return False
    tokens = rows * width
    if m.token_cap is not None and tokens > m.token_cap:
        return False
    peak = predict(m, tokens)
    return peak is None or model.usable_bytes is None or peak <= model.usable_bytes


def rows_at(model: MemoryModel, width: int, gc: bool | None = None) -> int:
    """The widest micro-batch that fits at `width` (0: not even one example)."""
    return next((r for r in range(model.rows_cap, 0, -1) if fits(model, r, width, gc)), 0)


def split(model: MemoryModel, lengths: Sequence[int], gc: bool | None = None) -> list[int] | None:
    """Micro-batch sizes for a step whose examples have these token lengths, in order; each
    micro-batch as wide as fits. None when one does not fit even at the floor."""
    sizes, i, n = [], 0, len(lengths)
    while i < n:
        rows, longest = 0, 0
        for r in range(1, min(model.rows_cap, n - i) + 1):
            longest = max(longest, lengths[i + r - 1])
            if not fits(model, r, padded_width(longest, model.max_seq_length), gc):
                break
            rows = r
        if rows == 0 or rows < min(model.rows_floor, n - i):
            return None
        sizes.append(rows)
        i += rows
    return sizes


def shapes(lengths: Sequence[int], sizes: Sequence[int], max_seq_length: int) -> list[tuple[int, int]]:
    """(rows, padded width) of each micro-batch of a split."""
    out, i = [], 0
    for rows in sizes:
        out.append((rows, padded_width(max(lengths[i:i + rows]), max_seq_length)))
        i += rows
    return out


def candidate_shapes(steps: Sequence[Sequence[int]], rows_cap: int,
                     max_seq_length: int) -> dict[tuple[int, int], tuple[int, int]]:
    """Every (rows, padded width) a split of these steps can form, each with where it first
    occurs (step index, first example): consecutive examples of one step, up to rows_cap."""
    found: dict[tuple[int, int], tuple[int, int]] = {}
    for s, lengths in enumerate(steps):
        for i in range(len(lengths)):
            longest = 0
            for r in range(1, min(rows_cap, len(lengths) - i) + 1):
                longest = max(longest, lengths[i + r - 1])
                found.setdefault((r, padded_width(longest, max_seq_length)), (s, i))
    return found


def next_probe(shapes: Sequence[tuple[int, int]], fit: int, over: int | None, first: bool) -> tuple[int, int] | None:
    """The next shape to measure between the most tokens known to fit and the fewest known not
    to: the largest first (one measurement when everything fits), then halving the interval."""
    open_ = sorted((s for s in shapes if fit < s[0] * s[1] and (over is None or s[0] * s[1] < over)),
                   key=lambda s: (s[0] * s[1], s[1]))
    if not open_:
        return None
    return open_[-1] if first else open_[len(open_) // 2]


def largest_tokens(model: MemoryModel, steps: Sequence[Sequence[int]], gc: bool | None = None) -> int:
    """The most tokens any micro-batch of these steps gets under the model (0 if one cannot run)."""
    most = 0
    for lengths in steps:
        sizes = split(model, lengths, gc)
        if sizes is None:
            return 0
        most = max([most] + [r * w for r, w in shapes(lengths, sizes, model.max_seq_length)])
    return most


def label(sizes: Sequence[int]) -> str:
    """'4+4', '3+3+2', '1x8' for eight ones."""
    if len(sizes) > 2 and len(set(sizes)) == 1:
        return f"{sizes[0]}x{len(sizes)}"
    return "+".join(map(str, sizes))


def count_splits(texts) -> dict[str, int]:
    """Steps by split over metrics rows' `splits` fields ('4+4:9 3+3+2:1'), most frequent first."""
    counts: dict[str, int] = {}
    for text in texts:
        for part in (text or "").split():
            name, _, n = part.rpartition(":")
            counts[name] = counts.get(name, 0) + int(n)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


# --- fitting the probe's measurements ---------------------------------------------------
def fit_line(points: Sequence[ProbePoint], floor_bytes: float) -> tuple[float, float]:
    """(base, per_token) of a line under which every measured peak lies: the least-squares
    slope, the base raised to the highest point. One point: the line from (0, floor_bytes)."""
    ts = [p.rows * p.width for p in points]
    ys = [float(p.peak_bytes) for p in points]
    if len(set(ts)) < 2:
        slope = max((max(ys) - floor_bytes) / max(ts), 0.0)
    else:
        mt, my = sum(ts) / len(ts), sum(ys) / len(ys)
        slope = max(sum((t - mt) * (y - my) for t, y in zip(ts, ys)) / sum((t - mt) ** 2 for t in ts), 0.0)
    base = max(y - slope * t for t, y in zip(ts, ys))
    return base, slope


def fit_time(points: Sequence[ProbePoint]) -> tuple[float, float] | None:
    """(seconds_base, seconds_per_token) by least squares over the timed points."""
    pts = [(p.rows * p.width, p.seconds) for p in points if p.seconds is not None]
    if not pts:
        return None
    if len({t for t, _ in pts}) < 2:
        return 0.0, sum(s for _, s in pts) / sum(t for t, _ in pts)
    mt, ms = sum(t for t, _ in pts) / len(pts), sum(s for _, s in pts) / len(pts)
    slope = sum((t - mt) * (s - ms) for t, s in pts) / sum((t - mt) ** 2 for t, _ in pts)
    slope = max(slope, 0.0)
    return max(ms - slope * mt, 0.0), slope


def measured(gc: bool, points: list[ProbePoint], floor_bytes: float, token_cap: int | None = None) -> MemoryMode:
    base, per_token = fit_line(points, floor_bytes)
    t = fit_time(points)
    return MemoryMode(grad_checkpoint=gc, base_bytes=base, per_token_bytes=per_token, points=points,
                      seconds_base=t[0] if t else None, seconds_per_token=t[1] if t else None, token_cap=token_cap)


def epoch_seconds(model: MemoryModel, gc: bool, steps: Sequence[Sequence[int]]) -> float | None:
    """Estimated seconds of these steps in one mode; None when a step does not fit in it."""
    m = mode(model, gc)
    if m is None or m.seconds_per_token is None:
        return None
    total = 0.0
    for lengths in steps:
        sizes = split(model, lengths, gc)
        if sizes is None:
            return None
        total += sum(m.seconds_base + m.seconds_per_token * r * w
                     for r, w in shapes(lengths, sizes, model.max_seq_length))
    return total


def checkpointing_could_win(model: MemoryModel, steps: Sequence[Sequence[int]]) -> bool:
    """Whether checkpointing could be worth measuring: even at its best (every step at full width,
    each token CHECKPOINT_COST times the plain time) it must beat the plain plan by PREFER_PLAIN."""
    plain, m = epoch_seconds(model, False, steps), mode(model, False)
    if plain is None or m is None or m.seconds_per_token is None:
        return True
    best = 0.0
    for lengths in steps:
        full = [min(model.rows_cap, len(lengths) - i) for i in range(0, len(lengths), model.rows_cap)]
        best += sum(m.seconds_base + m.seconds_per_token * CHECKPOINT_COST * r * w
                    for r, w in shapes(lengths, full, model.max_seq_length))
    return best * PREFER_PLAIN < plain


def choose(model: MemoryModel, steps: Sequence[Sequence[int]]) -> MemoryModel:
    """The faster measured mode in which every step fits, and why, in words (unchanged if none fits)."""
    est = {gc: epoch_seconds(model, gc, steps) for gc in (False, True) if mode(model, gc)}
    ok = {gc: s for gc, s in est.items() if s is not None}
    if not ok:
        return model
    gc = min(ok, key=lambda g: (ok[g] * (PREFER_PLAIN if g else 1.0), g))
    if len(est) == 1:
        why = "the job asks for it (memory.grad_checkpoint)" if gc else "every step fits the budget without it"
    elif len(ok) == 1:
        why = f"without it {_one_example(model, steps)}"
    else:
        why = (f"an epoch takes an estimated {ok[gc]:.1f} s {'with' if gc else 'without'} it, against"
               f" {ok[not gc]:.1f} s {'without' if gc else 'with'} it (on only when {PREFER_PLAIN - 1:.0%} faster)")
    return model.model_copy(update={"grad_checkpoint": gc, "why": f"checkpointing {'on' if gc else 'off'}: {why}"})


def _one_example(model: MemoryModel, steps: Sequence[Sequence[int]]) -> str:
    widest = padded_width(max(max(s) for s in steps), model.max_seq_length)
    peak = predict(mode(model, False), widest * model.rows_floor)
    usable = (model.usable_bytes or 0) / GIB
    return (f"{model.rows_floor} example(s) of {widest} tokens need {peak / GIB:.2f} GB, over the"
            f" {usable:.2f} GB usable" if peak is not None else "the longest steps do not fit")


# --- corrections: every out-of-memory event makes the model more careful ------------------
def _with_mode(model: MemoryModel, m: MemoryMode) -> MemoryModel:
    modes = [m if x.grad_checkpoint == m.grad_checkpoint else x for x in model.modes]
    return model.model_copy(update={"modes": modes, "corrections": model.corrections + 1})


def _capped(m: MemoryMode, cap: int) -> MemoryMode:
    return m.model_copy(update={"token_cap": min(cap, m.token_cap if m.token_cap is not None else cap)})


def after_overrun(model: MemoryModel, tokens: int, peak: int) -> MemoryModel:
    """A micro-batch of `tokens` peaked at `peak`, over the budget: the line is raised to pass
    above it, and nothing as large is planned again in this mode."""
    m = mode(model)
    if m.per_token_bytes is not None and m.base_bytes is not None:
        m = m.model_copy(update={"per_token_bytes": max(m.per_token_bytes, (peak - m.base_bytes) / tokens * 1.02)})
    return _with_mode(model, _capped(m, tokens - 1))


def after_oom(model: MemoryModel, step_largest: int, failed: int) -> MemoryModel:
    """MLX ran out of memory on a micro-batch of `failed` tokens in a step whose largest had
    `step_largest`: no micro-batch above half of that (the ladder's halving, in tokens)."""
    return _with_mode(model, _capped(mode(model), max(min(step_largest // 2, failed - 1), 1)))


def after_death(model: MemoryModel, steps: Sequence[Sequence[int]], to_checkpointing: bool) -> MemoryModel:
    """The process died of memory (the daemon recorded it): checkpointing on when the daemon's
    ladder says so, else the largest micro-batch the plan makes is halved."""
    if to_checkpointing and not model.grad_checkpoint:
        modes = model.modes if mode(model, True) else [*model.modes, MemoryMode(grad_checkpoint=True)]
        return model.model_copy(update={"grad_checkpoint": True, "modes": modes, "corrections": model.corrections + 1,
                                        "why": "checkpointing on: the process ran out of memory without it"})
    largest = max(largest_tokens(model, steps), 2)
    return _with_mode(model, _capped(mode(model), largest // 2))


def fold_deaths(model: MemoryModel, downshifts: Sequence[Downshift], steps: Sequence[Sequence[int]]) -> MemoryModel:
    """Fold the daemon's records of out-of-memory deaths since the model last saw them."""
    for d in downshifts[model.downshifts_seen:]:
        if d.source in ("process_death", "gpu_fault"):
            model = after_death(model, steps, d.grad_checkpoint)
    return model.model_copy(update={"downshifts_seen": len(downshifts)})


def too_small(model: MemoryModel, longest: int) -> str:
    """Why nothing fits, and what would: the largest max_seq_length, the smallest budget."""
    m = mode(model, True) or mode(model)
    widest = padded_width(longest, model.max_seq_length) * model.rows_floor
    room = None
    if model.usable_bytes is not None and m.per_token_bytes:
        room = (model.usable_bytes - m.base_bytes) / m.per_token_bytes
    if m.token_cap is not None:
        room = m.token_cap if room is None else min(room, m.token_cap)
    fit_len = int(max(room or 0, 0) // model.rows_floor // PAD_TO * PAD_TO)
    text = (f"{model.rows_floor} example(s) of {widest // model.rows_floor} tokens do not fit"
            f"{' even with gradient checkpointing' if m.grad_checkpoint else ''}")
    if model.budget_bytes is not None and predict(m, widest) is not None:
        need = _round_up(predict(m, widest) / (1 - MARGIN) / GIB)
        text += f" in memory.budget_gb {model.budget_bytes / GIB:.3g} (they need about {need:g} GB)"
    hint = f"set training.max_seq_length to at most {fit_len}" if fit_len >= PAD_TO else "use a smaller model"
    if model.budget_bytes is not None and predict(m, widest) is not None:
        hint += f", or memory.budget_gb to at least {need:g}"
    return f"{text}: {hint}"


def _round_up(gb: float) -> float:
    """Up to 3 significant digits: 12.31 -> 12.4, 0.006361 -> 0.00637."""
    step = 10 ** (math.floor(math.log10(gb)) - 2)
    return round(math.ceil(gb / step) * step, 12)


def describe(model: MemoryModel) -> str:
    """The model in one line, for status and the report."""
    parts = []
    if model.budget_bytes is None:
        parts.append("no budget")
    else:
        parts.append(f"budget {model.budget_bytes / GIB:.3g} GB ({(model.usable_bytes or 0) / GIB:.3g} GB planned)")
    for m in model.modes:
        name = "with checkpointing" if m.grad_checkpoint else "without checkpointing"
        text = name
        if m.points:
            shown = ", ".join(f"{p.rows * p.width} tokens {p.peak_bytes / GIB:.3g} GB"
                              for p in sorted(m.points, key=lambda p: p.rows * p.width))
            text += f": measured {shown}; above those + {m.per_token_bytes / 1024**2:.3g} MB/token"
        elif m.base_bytes is not None:
            text += f": peak ~ {m.base_bytes / GIB:.3g} GB + {m.per_token_bytes / 1024**2:.3g} MB/token"
        if m.token_cap is not None:
            text += f", at most {m.token_cap} tokens a micro-batch"
        parts.append(text)
    if model.why:
        parts.append(model.why)
    if model.probe_seconds:
        parts.append(f"measured in {model.probe_seconds:.1f} s")
    if model.corrections:
        parts.append(f"{model.corrections} correction(s)")
    return "; ".join(parts)
