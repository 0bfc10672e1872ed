"""The first training step of a worker process pays for compiling the step (mx.compile traces
it; on Linux CPU, the first time on a machine, a C++ compiler builds its kernels, ~20-35 s).
That excess over an ordinary step is split out of the training time, so time and tokens/s
describe training, and the compile is reported on its own."""

from __future__ import annotations

SAMPLE = 3  # ordinary steps whose median stands for "a step"


class FirstStepClock:
    """Fed the duration of each step of one process; says once how much of the first was compiling."""

    def __init__(self) -> None:
        self.durations: list[float] = []
        self.settled = False

    @property
    def first(self) -> bool:
        """True until the process's first step has been timed."""
        return not self.durations

    def add(self, seconds: float) -> float | None:
        """The compile excess once SAMPLE ordinary steps followed the first, else None."""
        if self.settled:
            return None
        self.durations.append(seconds)
        return self.settle() if len(self.durations) > SAMPLE else None

    def settle(self) -> float | None:
        """The first step's excess over the median ordinary step (None when there is no ordinary step)."""
        if self.settled or len(self.durations) < 2:
            self.settled = True
            return None
        self.settled = True
        rest = sorted(self.durations[1:])
        return max(0.0, self.durations[0] - rest[len(rest) // 2])
