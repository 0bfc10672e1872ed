"""The worker's side of the memory plan: measuring it on the job's own data, and folding
out-of-memory events into it. The policy itself is pure, in farensed.memory.plan.

The probe runs forward + backward on real micro-batches and applies no update: the weights,
the optimizer state and the data cursor are untouched, and every step reseeds the RNG, so a
run that measured is the same run as one that did not.
"""

from __future__ import annotations

import hashlib
import json
import time

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten

from farensed.core.errors import FarensedError
from farensed.core.formats import Downshift, MemoryMode, MemoryModel, ProbePoint
from farensed.core.jobspec import JobSpec
from farensed.core.units import GIB
from farensed.memory import ladder
from farensed.memory import plan as memplan
from farensed.worker import batching
from farensed.worker.model import BadJob

MAX_PROBES = 4  # micro-batch shapes measured a mode, at most (the probe's cost: 2% of a guide-size job)
CLOSE_ENOUGH = 1.15  # the search stops once the fewest tokens over is within this of the most that fit


class OutOfMemory(FarensedError):
    """A micro-step ran out of memory or over the budget; the model is corrected, the step redone."""

    def __init__(self, reason: str, source: str, rows: int, width: int, peak: int = 0, largest: int = 0):
        super().__init__(reason)
        self.source, self.rows, self.width, self.peak = source, rows, width, peak
        self.largest = largest or rows * width  # tokens of the step's largest micro-batch (queued work)


class OomExhausted(FarensedError):
    """Nothing left on the ladder."""


def settings_key(spec: JobSpec, model_path: str, fingerprint: str, compile: bool) -> str:
    """What a measured model holds for: a resume with other settings measures again."""
    try:
        device = str(mx.device_info().get("device_name"))
    except Exception:  # older mlx: no device_info
        device = str(mx.default_device())
    info = {"model": model_path, "lora": spec.lora.model_dump(), "max_seq_length": spec.training.max_seq_length,
            "batch_size": spec.training.batch_size, "memory": spec.memory.model_dump(), "data": fingerprint,
            "compile": compile, "mlx": mx.__version__, "device": device, "plan": 2}  # plan: how models are measured
    return hashlib.sha256(json.dumps(info, sort_keys=True).encode()).hexdigest()[:16]


def unmeasured(spec: JobSpec, key: str) -> MemoryModel:
    """The plan without a budget: micro-batches of batch_size, nothing measured."""
    gc, budget = spec.memory.grad_checkpoint, spec.memory.budget_gb
    why = "checkpointing on: the job asks for it (memory.grad_checkpoint)" if gc else "checkpointing off"
    return MemoryModel(key=key, rows_cap=spec.training.batch_size, rows_floor=spec.memory.min_micro_batch,
                       max_seq_length=spec.training.max_seq_length, grad_checkpoint=gc,
                       budget_bytes=int(budget * GIB) if budget else None,
                       usable_bytes=int(budget * GIB * (1 - memplan.MARGIN)) if budget else None,
                       modes=[MemoryMode(grad_checkpoint=gc)], why=why)


# --- measuring ---------------------------------------------------------------------------
def _floor_bytes(tr) -> float:
    """Memory held before any example: weights, adapters, optimizer state, plus the gradient
    accumulator a step keeps between its micro-batches."""
    mx.eval(tr.model.parameters(), tr.optimizer.state)
    trainable = sum(v.nbytes for _, v in tree_flatten(tr.model.trainable_parameters()))
    return float(mx.get_active_memory() + trainable)


def _run(tr, arrays) -> tuple[int, float] | None:
    """Two micro-batches of these arrays as a step runs them (the second queued while the first
    runs, adding to its gradient): (peak bytes, seconds a micro-batch); None when MLX ran out of memory."""
    mx.reset_peak_memory()
    t0 = time.perf_counter()
    try:
        _, _, acc = tr.fns.micro(*arrays, None)
        mx.async_eval(acc)
        out = tr.fns.micro(*arrays, acc)
        mx.async_eval(out)
        mx.eval(acc)
        mx.eval(out)
    except RuntimeError as e:
        if ladder.is_oom_message(str(e)):
            mx.clear_cache()
            return None
        raise
    return mx.get_peak_memory(), (time.perf_counter() - t0) / 2


def _arrays(tr, idx: np.ndarray):
    return tuple(mx.array(a) for a in batching.padded(tr.train, idx, tr.spec.training.max_seq_length))


def _measure(tr, idx: np.ndarray, usable: int) -> tuple[ProbePoint | None, float]:
    """One real micro-batch shape: a first run (which also compiles it) and, when that stayed within
    `usable`, a second one for the steady peak and the time (on CUDA a later run peaks higher
    than the first: the host runs further ahead of the device). The point (None when MLX ran out
    of memory) and the first run's excess over the second (compiling)."""
    arrays = _arrays(tr, idx)
    rows, width = (int(n) for n in arrays[2].shape)
    first = _run(tr, arrays)
    if first is None:
        return None, 0.0
    point = ProbePoint(rows=rows, width=width, peak_bytes=int(first[0]))
    if first[0] > usable:
        return point, 0.0
    again = _run(tr, arrays)
    if again is None:
        return point.model_copy(update={"peak_bytes": max(int(first[0]), usable + 1)}), 0.0
    return (point.model_copy(update={"peak_bytes": int(max(first[0], again[0])), "seconds": again[1]}),
            2 * max(first[1] - again[1], 0.0))


def measure_mode(tr, model: MemoryModel, gc: bool) -> tuple[MemoryMode, float]:
    """Measure one checkpointing mode on the job's own micro-batches: the longest example alone,
    then the largest shape the job's steps can form, then halving between the most tokens that
    fitted and the fewest that did not (until within CLOSE_ENOUGH, MAX_PROBES shapes at most),
    trying only shapes whose fitted line stays within the budget (a probe must not itself run
    far over it). No micro-batch above the largest fitted is planned (token_cap) unless the
    largest shape fitted. Returns the mode and the first run's compiling seconds (not the
    probe's cost: the first step would have paid them)."""
    tr.set_memory(model.model_copy(update={"grad_checkpoint": gc}))
    floor, usable, budget = _floor_bytes(tr), model.usable_bytes, model.budget_bytes
    steps, plan = tr.step_lengths(0), tr.plan(0)
    where = memplan.candidate_shapes(steps, model.rows_cap, model.max_seq_length)
    longest = np.argsort(-tr._lengths, kind="stable")
    first, compiling = _measure(tr, longest[:1], usable)
    if first is None:  # MLX out of memory on one example: this mode cannot run the longest steps
        return MemoryMode(grad_checkpoint=gc, token_cap=_width(tr, longest[:1]) - 1), compiling
    points = [first]
    tokens = first.rows * first.width
    fit, over = (tokens, None) if first.peak_bytes <= usable else (0, tokens)
    for round_ in range(MAX_PROBES - 1):
        if over is not None and over <= fit * CLOSE_ENOUGH:
            break
        line = memplan.measured(gc, points, floor)
        safe = [s for s in where if memplan.line(line, s[0] * s[1]) <= budget]
        shape = memplan.next_probe(safe, fit, over, first=round_ == 0)
        if shape is None:
            break
        step, at = where[shape]
        point, _ = _measure(tr, plan[step][at:at + shape[0]], usable)
        if point is not None:
            points.append(point)
        tokens = shape[0] * shape[1]
        if point is not None and point.peak_bytes <= usable:
            fit = max(fit, tokens)
        else:
            over = tokens if over is None else min(over, tokens)
    cap = None if fit >= max(r * w for r, w in where) else fit or over - 1  # none fitted: below the smallest over
    return memplan.measured(gc, points, floor, token_cap=cap), compiling


def _width(tr, idx: np.ndarray) -> int:
    return memplan.padded_width(int(tr._lengths[idx].max()), tr.spec.training.max_seq_length)


def _replace(model: MemoryModel, m: MemoryMode) -> MemoryModel:
    return model.model_copy(update={"modes": [x for x in model.modes if x.grad_checkpoint != m.grad_checkpoint] + [m]})


def with_mode(tr, model: MemoryModel, gc: bool) -> tuple[MemoryModel, float]:
    """`model` with the mode `gc` added: measured when there is a budget, else plain; and the
    seconds its first call spent compiling."""
    m, compiling = measure_mode(tr, model, gc) if model.budget_bytes else (MemoryMode(grad_checkpoint=gc), 0.0)
    tr.set_memory(model)  # measuring switched the trainer's mode
    return _replace(model, m), compiling


def _full_width(model: MemoryModel, steps) -> bool:
    return all(memplan.split(model, s) == [len(b) for b in batching.chunks(np.arange(len(s)), model.rows_cap)]
               for s in steps)


def establish(tr, model: MemoryModel, log) -> MemoryModel:
    """Measure the model (only with a budget): a bad job when the budget cannot hold the model,
    or one example of the longest bucket even with checkpointing. The seconds the probe's first
    runs spent compiling MLX's kernels (the first step would have paid them) are logged apart."""
    if not model.budget_bytes:
        return model
    t0, steps, spec = time.monotonic(), tr.step_lengths(0), tr.spec
    floor = _floor_bytes(tr)
    if floor > model.budget_bytes:
        raise BadJob(f"memory.budget_gb {spec.memory.budget_gb:g} is smaller than the model itself: its weights,"
                     f" adapters and optimizer state take {floor / GIB:.2f} GB before any example; set budget_gb to"
                     f" well above that, or use a smaller (4-bit) model")
    model, compiling = with_mode(tr, model, spec.memory.grad_checkpoint)
    skipped = None
    if not spec.memory.grad_checkpoint and not _full_width(model, steps):
        if memplan.checkpointing_could_win(model, steps):  # narrower without: is checkpointing with wider ones faster?
            model, more = with_mode(tr, model, True)
            compiling += more
        else:
            skipped = memplan.epoch_seconds(model, False, steps)
    model = memplan.choose(model, steps)
    if skipped is not None and not model.grad_checkpoint:
        model = model.model_copy(update={"why": f"checkpointing off: not measured, as it could not be"
                                                f" {memplan.PREFER_PLAIN - 1:.0%} faster: an epoch takes an"
                                                f" estimated {skipped:.1f} s without it, and it recomputes every"
                                                f" block's forward"})
    if any(memplan.split(model, s) is None for s in steps):
        raise BadJob(memplan.too_small(model, int(tr._lengths.max())))
    model = model.model_copy(update={"probe_seconds": round(time.monotonic() - t0 - compiling, 3)})
    epoch = memplan.epoch_seconds(model, model.grad_checkpoint, steps) or 0.0
    job = epoch * tr.total / max(tr.per_epoch, 1)
    share = round(model.probe_seconds / job, 4) if job else None
    log.info("memory_measured", seconds=model.probe_seconds, share_of_job=share, compile_seconds=round(compiling, 3),
             estimated_job_seconds=round(job, 1), grad_checkpoint=model.grad_checkpoint, why=model.why,
             points=sum(len(m.points) for m in model.modes), model=memplan.describe(model))
    return model


def ensure_measured(tr, model: MemoryModel) -> MemoryModel:
    """After the daemon's ladder switched checkpointing on: that mode measured, if there is a budget."""
    m = memplan.mode(model)
    if model.budget_bytes and (m is None or m.base_bytes is None):
        measured, _ = with_mode(tr, model, model.grad_checkpoint)
        return _replace(model, memplan.mode(measured).model_copy(update={"token_cap": m.token_cap if m else None}))
    return model


# --- during training ---------------------------------------------------------------------
def split_step(tr, idx: np.ndarray) -> list[int]:
    """This step's micro-batch sizes; checkpointing goes on when not even the floor fits without."""
    lengths = tr._lengths[idx].tolist()
    sizes = memplan.split(tr.memory, lengths)
    if sizes is None and not tr.memory.grad_checkpoint:
        use_checkpointing(tr, f"{len(lengths)} examples up to {max(lengths)} tokens do not fit without it")
        sizes = memplan.split(tr.memory, lengths)
    if sizes is None:
        raise OomExhausted(memplan.too_small(tr.memory, max(lengths)))
    return sizes


def use_checkpointing(tr, why: str) -> None:
    """The ladder's last rung (measured first when there is a budget and it was not yet)."""
    model = tr.memory
    if memplan.mode(model, True) is None:
        model, _ = with_mode(tr, model, True)
    tr.log.warning("grad_checkpoint_on", step=tr.p.step + 1, why=why)
    tr.set_memory(model.model_copy(update={"grad_checkpoint": True, "why": f"checkpointing on: {why}"}))


def correct(tr, e: OutOfMemory) -> None:
    """Fold an out-of-memory event into the model; the step is then split again and redone.
    Every figure comes from the event, so all ranks of a data-parallel job correct alike."""
    mx.clear_cache()
    tokens = e.rows * e.width
    if e.source == "budget":
        model = memplan.after_overrun(tr.memory, tokens, e.peak)
    else:
        model = memplan.after_oom(tr.memory, e.largest, tokens)
    tr.set_memory(model)
    to = memplan.rows_at(model, e.width)
    if to == 0 and not model.grad_checkpoint:
        use_checkpointing(tr, f"{e.rows} x {e.width} tokens ran out of memory and nothing narrower is left")
        to = memplan.rows_at(tr.memory, e.width)
    tr.downshifts.append(Downshift(step=tr.p.step + 1, from_micro_batch=e.rows, to_micro_batch=to,
                                   grad_checkpoint=tr.memory.grad_checkpoint, reason=str(e), source=e.source,
                                   at=time.time(), tokens=tokens, width=e.width))
    tr.memory = tr.memory.model_copy(update={"downshifts_seen": len(tr.downshifts)})
    tr.log.warning("oom_downshift", step=tr.p.step + 1, width=e.width, micro_batch=e.rows, to_micro_batch=to,
                   grad_checkpoint=tr.memory.grad_checkpoint, reason=str(e))
    if to == 0:
        raise OomExhausted(memplan.too_small(tr.memory, int(tr._lengths.max())) + f" (last: {e})")
