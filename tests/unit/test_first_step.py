"""The first step of a worker process: its excess over an ordinary step is the compile, kept out of
the training time (pure; the worker side is in test_scoring.py)."""

from __future__ import annotations

import pytest

from farensed.worker.first_step import FirstStepClock


def test_first_step_clock_takes_the_excess_over_the_median_ordinary_step():
    # Given a process whose first step took 30 s and the next ones about 0.1 s
    clock = FirstStepClock()
    # When the steps are fed in
    got = [clock.add(s) for s in (30.1, 0.1, 0.3, 0.1, 0.1)]
    # Then once three ordinary steps are known, the excess over their median is the compile, said once
    assert got[:3] == [None, None, None] and got[3] == pytest.approx(30.0) and got[4] is None
    # And a process with a single step has no ordinary step to compare with
    single = FirstStepClock()
    single.add(5.0)
    assert single.settle() is None
    short = FirstStepClock()
    short.add(5.0)
    short.add(1.0)
    assert short.settle() == pytest.approx(4.0)
