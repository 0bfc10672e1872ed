"""Fault injection for tests and drills, set by FARENSED_FAULTS (comma-separated KIND@STEP).

Each fault fires once per run (a marker file in the run folder remembers it), when the
worker starts computing optimizer step STEP (1-based):

  oom@N          raise MLX's Metal out-of-memory RuntimeError (also oom_cuda@N, oom_malloc@N)
  nan@N          make step N's loss NaN          nan_from@N  every step from N on
  abort_oom@N    print Metal's OOM message to stderr and abort (SIGABRT), as Metal does
  gpu_fault@N    print the ImpactingInteractivity message and abort
  kill@N         SIGKILL itself (like jetsam or the Linux OOM killer)
  kill_in_checkpoint@N   SIGKILL itself halfway through writing the step-N checkpoint
  corrupt_checkpoint@N   the step-N checkpoint, once in place, gets a damaged byte (a failing disk)
  disk_full@N    the free-space check before the first checkpoint at or after step N sees 0 bytes
  full_write@N   the first best-adapters file written at or after step N goes to /dev/full, so
                 mx.save_safetensors meets the kernel's ENOSPC for real (Linux)
  segv@N         SIGSEGV itself (like MLX on Linux CPU out of memory)
  hang@N         stop making progress (sleep) until killed, for the stall watchdog
  term_in_eval@N SIGTERM itself in the middle of the evaluation after step N
  kill_in_scoring@N  SIGKILL itself once N answers of the scoring phase are written
  term_in_scoring@N  SIGTERM itself once N answers of the scoring phase are written
  hang_in_export@0   the export worker sleeps until killed once its fused files are written

In a data-parallel job every rank fires an unqualified fault; KIND@STEP:RANK fires on that
rank only (kill@5:1 is rank 1 killed as step 5 starts). Ranks other than 0 keep their
markers as .fault-KIND-STEP-rRANK.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

ENV = "FARENSED_FAULTS"
MESSAGES = {
    "oom": "[METAL] Command buffer execution failed: Insufficient Memory "
           "(00000008:kIOGPUCommandBufferCallbackErrorOutOfMemory)",
    "oom_cuda": "cudaMallocAsync(&data, size, stream) failed: out of memory",
    "oom_malloc": "[malloc] Unable to allocate 1073741824 bytes.",
    "gpu_fault": "[METAL] Command buffer execution failed: Impacting Interactivity "
                 "(0000000e:kIOGPUCommandBufferCallbackErrorImpactingInteractivity)",
}


def _parse(spec: str, rank: int) -> list[tuple[str, int]]:
    """(kind, step) of the faults planned for `rank`."""
    out = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        kind, _, where = part.partition("@")
        step, _, only = where.partition(":")
        if not only or int(only) == rank:
            out.append((kind, int(step)))
    return out


class Faults:
    def __init__(self, run_dir: Path, spec: str | None = None, rank: int = 0):
        spec = os.environ.get(ENV, "") if spec is None else spec
        self.run_dir, self.rank = run_dir, rank
        self.planned = _parse(spec, rank)

    def _fire_once(self, kind: str, step: int) -> bool:
        marker = self.run_dir / (f".fault-{kind}-{step}" + (f"-r{self.rank}" if self.rank else ""))
        if marker.exists():
            return False
        marker.touch()
        return True

    def at_step(self, step: int) -> None:
        """Called as step `step` starts; raises or dies if a fault is planned there."""
        for kind, at in self.planned:
            if at == step and kind in ("oom", "oom_cuda", "oom_malloc") and self._fire_once(kind, at):
                raise RuntimeError(MESSAGES[kind])
            if at == step and kind in ("abort_oom", "gpu_fault", "kill", "segv") and self._fire_once(kind, at):
                _die(kind)
            if at == step and kind == "hang" and self._fire_once(kind, at):
                while True:
                    time.sleep(3600)

    def in_eval(self, step: int) -> None:
        """Called between the micro-batches of an evaluation."""
        if ("term_in_eval", step) in self.planned and self._fire_once("term_in_eval", step):
            os.kill(os.getpid(), signal.SIGTERM)

    def in_checkpoint(self, step: int, written: Path | None = None) -> None:
        """Called between the files of a checkpoint being written, and with `written` once it is in place."""
        planned = lambda kind: (kind, step) in self.planned  # noqa: E731
        if written is None and planned("kill_in_checkpoint") and self._fire_once("kill_in_checkpoint", step):
            _die("kill")
        if written is not None and planned("corrupt_checkpoint"):
            blob = written / "optimizer.safetensors"
            data = bytearray(blob.read_bytes())
            data[-1] ^= 0xFF
            blob.write_bytes(bytes(data))

    def in_scoring(self, answered: int) -> None:
        """Called after each answer of the scoring phase is written (N counts answers, not steps)."""
        if ("kill_in_scoring", answered) in self.planned and self._fire_once("kill_in_scoring", answered):
            _die("kill")
        if ("term_in_scoring", answered) in self.planned and self._fire_once("term_in_scoring", answered):
            os.kill(os.getpid(), signal.SIGTERM)

    def free_bytes(self, step: int, real: int) -> int:
        """Free disk as the checkpoint's space check sees it."""
        for kind, at in self.planned:
            if kind == "disk_full" and step >= at and self._fire_once(kind, at):
                return 0
        return real

    def before_tensor_write(self, path: Path, step: int) -> None:
        """Called before an adapters file is written to the temp name `path`."""
        for kind, at in self.planned:
            if kind == "full_write" and step >= at and self._fire_once(kind, at):
                path.unlink(missing_ok=True)
                path.symlink_to("/dev/full")

    def nan_at(self, step: int) -> bool:
        return any((k == "nan" and s == step) or (k == "nan_from" and step >= s) for k, s in self.planned)


def _die(kind: str) -> None:
    if kind in ("abort_oom", "gpu_fault"):
        sys.stderr.write(("libc++abi: terminating due to uncaught exception of type std::runtime_error: "
                          + MESSAGES["oom" if kind == "abort_oom" else "gpu_fault"]) + "\n")
        sys.stderr.flush()
        os.abort()
    os.kill(os.getpid(), signal.SIGKILL if kind == "kill" else signal.SIGSEGV)
