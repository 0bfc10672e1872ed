"""Data-parallel ranks through mx.distributed: the worker side of a job's [distributed] section.

A step's examples are shared among the ranks (sharding.py). Each rank's token-summed loss,
target count and gradient are summed over all ranks in one all_sum that also carries every
rank's out-of-memory and stop flags, so all ranks make the same update and take the same
decisions at the same step. Rank 0 owns the run folder: what it reads (job, training state,
checkpoint) reaches the other ranks by broadcast, so hosts need not share a disk.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten, tree_map_with_path

from farensed.core.formats import RankInfo
from farensed.core.units import GIB
from farensed.worker import sharding
from farensed.worker.memory import OutOfMemory
from farensed.worker.model import BadJob

HOST_BYTES = 64
EVENT = 5  # figures of one rank's out-of-memory event in the step's sum
OOM_SOURCES = ("budget", "runtime_error")  # OutOfMemory.source, coded 1 + index in the flags
PEER_LOST = ("[ring]", "[jaccl]", "[nccl]", "[mpi]", "NCCL error")


def init(backend: str | None):
    """Solo() for a one-process job, else this rank's Group (blocks until every rank is there)."""
    if backend is None:
        return Solo()
    # mlx.launch runs with SIGTERM ignored (the daemon's stop must reach the ranks, not end the
    # launcher); a rank still connecting has nothing to save, so a stop simply ends it.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # A rank never reads stdin; closing it lets mlx.launch stop polling it (see daemon/worker_process.py).
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    return Group(mx.distributed.init(strict=True, backend=backend))


def is_peer_lost(message: str) -> bool:
    """A collective failed because another rank went away (its own end is the real cause)."""
    return any(tag in message for tag in PEER_LOST)


def _set_leaf(tree, path: str, value) -> None:
    """Replace one leaf in place: the compiled step holds this very tree, so it must not be swapped."""
    *parents, last = path.split(".")
    for part in parents:
        tree = tree[int(part)] if isinstance(tree, list) else tree[part]
    if isinstance(tree, list):
        tree[int(last)] = value
    else:
        tree[last] = value


class Solo:
    """One process: every collective is the identity, every decision its own."""

    rank, size, is_root = 0, 1, True
    ranks: tuple[RankInfo, ...] = ()

    def share(self, step: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        return step

    def step_sum(self, compute, params, stop: bool):
        return compute()

    def stopping(self, local: bool) -> bool:
        return local

    def agree_stop(self, local: bool) -> bool:
        return local

    def barrier(self) -> None:
        pass

    def rounds(self, items: list) -> list:
        return list(items)

    def sum(self, *arrays: mx.array) -> tuple[mx.array, ...]:
        return arrays

    def from_root(self, make):
        return make()

    def sync_from_root(self, model, optimizer) -> None:
        pass

    def check_same(self, what: str, digest: str) -> None:
        pass


class Group(Solo):
    """One rank of several."""

    def __init__(self, group):
        self.group = group
        self.rank, self.size = group.rank(), group.size()
        self.is_root = self.rank == 0
        self._stop = False
        self.ranks = tuple(self._gather_ranks())

    def _all_sum(self, x: mx.array) -> mx.array:
        out = mx.distributed.all_sum(x, group=self.group)
        mx.eval(out)
        return out

    def _gather(self, row: bytes) -> list[bytes]:
        rows = mx.distributed.all_gather(mx.array(np.frombuffer(row, dtype=np.uint8)), group=self.group)
        return [bytes(r) for r in np.array(rows).reshape(self.size, -1)]

    def _gather_ranks(self) -> list[RankInfo]:
        me = socket.gethostname().encode()[:HOST_BYTES].ljust(HOST_BYTES, b"\0") + os.getpid().to_bytes(8, "little")
        return [RankInfo(rank=r, host=row[:HOST_BYTES].rstrip(b"\0").decode(errors="replace"),
                         pid=int.from_bytes(row[HOST_BYTES:], "little")) for r, row in enumerate(self._gather(me))]

    # --- the step -----------------------------------------------------------------------
    def share(self, step: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        return sharding.share(step, lengths, self.rank, self.size)

    def step_sum(self, compute, params, stop: bool):
        """Sum of every rank's (loss, target count, gradient) of the step; raises OutOfMemory on
        every rank when any ran out, so all downshift alike and redo the step."""
        failed = None
        try:
            loss, ntoks, grad = compute()
        except OutOfMemory as e:
            failed, loss, ntoks, grad = e, mx.array(0.0), mx.array(0.0), None
        keys = [k for k, _ in tree_flatten(params)]
        mine = dict(tree_flatten(grad)) if grad is not None else {}
        leaves = [mine[k] if k in mine else mx.zeros_like(v) for k, v in tree_flatten(params)]
        # per rank: [out-of-memory source code, rows, width, peak GiB, largest tokens]; then the stop flag
        flags = np.zeros(EVENT * self.size + 1, dtype=np.float32)
        if failed is not None:
            flags[EVENT * self.rank:EVENT * (self.rank + 1)] = (
                1 + OOM_SOURCES.index(failed.source), failed.rows, failed.width, failed.peak / GIB, failed.largest)
        flags[-1] = float(stop)
        parts = [v.reshape(-1).astype(mx.float32) for v in leaves]
        total = self._all_sum(mx.concatenate([*parts, mx.stack([loss, ntoks]).astype(mx.float32), mx.array(flags)]))
        n = EVENT * self.size + 1
        events = np.array(total[-n:])
        self._stop = self._stop or bool(events[-1] > 0)
        self._raise_if_out_of_memory(events[:-1].reshape(self.size, EVENT), failed, OutOfMemory)
        return total[-(n + 2)], total[-(n + 1)], self._unflatten(total, keys, leaves, params)

    def _raise_if_out_of_memory(self, events: np.ndarray, failed, error) -> None:
        """The first rank's out-of-memory event, raised on every rank from the summed figures (the
        failing rank too), so that every rank corrects its memory model identically."""
        out = [r for r in range(self.size) if events[r, 0] > 0]
        if not out:
            return
        r = out[0]
        code, rows, width, peak_gib, largest = events[r]
        why = str(failed) if failed is not None and r == self.rank else "ran out of memory"
        raise error(f"rank {r} on {self.ranks[r].host}: {why}", OOM_SOURCES[int(code) - 1], int(rows), int(width),
                    int(peak_gib * GIB), int(largest))

    @staticmethod
    def _unflatten(total: mx.array, keys: list[str], leaves: list[mx.array], params):
        got, offset = {}, 0
        for k, v in zip(keys, leaves):
            got[k] = total[offset:offset + v.size].reshape(v.shape).astype(v.dtype)
            offset += v.size
        return tree_map_with_path(lambda path, v: got[path], params)

    def stopping(self, local: bool) -> bool:
        """The stop agreed in the last sum: a rank never stops alone (the others would wait for it)."""
        return self._stop

    # --- evaluation -----------------------------------------------------------------------
    def agree_stop(self, local: bool) -> bool:
        """Whether any rank was asked to stop (between evaluation batches); all then stop at this step."""
        self._stop = self._stop or bool(self._all_sum(mx.array([float(local)])).item() > 0)
        return self._stop

    def barrier(self) -> None:
        """Wait for every rank: on a stop, no rank leaves (and so has mlx.launch end the others)
        before rank 0's checkpoint is written."""
        self._all_sum(mx.array([0.0]))

    def rounds(self, items: list) -> list:
        """This rank's item of each round (None when it has none): every rank takes as many rounds."""
        n = math.ceil(len(items) / self.size)
        return [items[i] if (i := r * self.size + self.rank) < len(items) else None for r in range(n)]

    def sum(self, *arrays: mx.array) -> tuple[mx.array, ...]:
        total = self._all_sum(mx.stack([a.astype(mx.float32) for a in arrays]))
        return tuple(total[i] for i in range(len(arrays)))

    # --- rank 0 to the others -------------------------------------------------------------
    def _broadcast(self, arrays: list[mx.array]) -> list[mx.array]:
        """Rank 0's arrays, bit for bit, on every rank (the others give zeros of the same shapes)."""
        raw = [mx.view(a.reshape(-1), mx.uint8) for a in arrays]
        flat = mx.concatenate(raw) if self.is_root else mx.zeros((sum(r.size for r in raw),), dtype=mx.uint8)
        total, out, offset = self._all_sum(flat), [], 0
        for a, r in zip(arrays, raw):
            out.append(mx.view(total[offset:offset + r.size], a.dtype).reshape(a.shape))
            offset += r.size
        return out

    def from_root(self, make):
        """Rank 0's `make()` (a JSON value) on every rank."""
        data = json.dumps(make()).encode() if self.is_root else b""
        n = int(self._all_sum(mx.array([len(data)], dtype=mx.int32)).item())
        buf = mx.array(np.frombuffer(data, dtype=np.uint8)) if self.is_root else mx.zeros((n,), dtype=mx.uint8)
        return json.loads(bytes(np.array(self._broadcast([buf])[0])))

    def sync_from_root(self, model, optimizer) -> None:
        """Every rank gets rank 0's adapters and optimizer state (resumed or fresh), bit for bit."""
        params, state = tree_flatten(model.trainable_parameters()), tree_flatten(optimizer.state)
        got = self._broadcast([v for _, v in params + state])
        if self.is_root:
            return
        model.load_weights(list(zip([k for k, _ in params], got[: len(params)])), strict=False)
        for (path, _), value in zip(state, got[len(params):]):
            _set_leaf(optimizer.state, path, value)

    def check_same(self, what: str, digest: str) -> None:
        """Fail on every rank, naming the hosts, when `digest` (hex) differs from rank 0's."""
        rows = self._gather(bytes.fromhex(digest))
        odd = [r for r in range(self.size) if rows[r] != rows[0]]
        if odd:
            where = ", ".join(f"rank {r} on {self.ranks[r].host}" for r in odd)
            raise BadJob(f"{what} differs between the hosts: {where} do(es) not match rank 0 on {self.ranks[0].host};"
                         f" make every host's copy the same (farensectl doctor --job says what differs)")
