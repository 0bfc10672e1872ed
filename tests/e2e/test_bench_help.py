"""Every benchmark starts as a module from the repository root: `python -m bench.KIND.NAME --help`
imports it (and through it farensed and bench's shared helpers) and prints its usage, running nothing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO

SCRIPTS = sorted(".".join(p.relative_to(REPO).with_suffix("").parts) for p in (REPO / "bench").rglob("*.py")
                 if '__name__ == "__main__"' in p.read_text(encoding="utf-8"))


def test_the_benchmarks_are_found():
    assert len(SCRIPTS) >= 10, SCRIPTS


@pytest.mark.parametrize("module", SCRIPTS)
def test_a_benchmark_answers_help_without_running(module):
    # When the benchmark is started as a module with --help, from the repository root
    proc = subprocess.run([sys.executable, "-m", module, "--help"], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    # Then it prints its usage and exits 0 (no import error, no benchmark run)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("usage:"), proc.stdout[:500]
