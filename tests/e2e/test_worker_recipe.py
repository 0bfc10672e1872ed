"""The worker's recipe pieces that hold by construction: the rank's writer and the table of ends."""

from __future__ import annotations

import errno
import inspect

from farensed.core import exitcodes
from farensed.worker.exits import EXITS, exit_for
from farensed.worker.run_writer import NullWriter, RunWriter, for_rank


def test_the_null_writer_overrides_every_write_of_the_run_writer(tmp_path):
    # Given the writer of rank 0 and of any other rank
    writes = {n for n, f in inspect.getmembers(RunWriter, inspect.isfunction) if not n.startswith("_")}
    # Then every write rank 0 makes is one the other ranks' writer replaces with nothing
    assert writes and all(getattr(NullWriter, n) is not getattr(RunWriter, n) for n in writes), writes
    assert type(for_rank(True, tmp_path, None, 1)) is RunWriter
    assert type(for_rank(False, tmp_path, None, 1)) is NullWriter


def test_every_exit_code_but_ok_is_in_the_table_of_ends():
    # Given the named exit codes and the table from exceptions to codes
    codes = {c for c in exitcodes.NAMES if c != exitcodes.EXIT_OK}
    # Then each code but EXIT_OK is the end of some exception, and the table names no other code
    assert {x.code for x in EXITS} == codes


def test_the_table_decides_by_the_error_and_its_message_in_order():
    # Given errors of the kinds the worker meets at its end
    full, other = OSError(errno.ENOSPC, "No space left on device", "/r/x"), OSError(errno.EACCES, "denied")
    oom = RuntimeError("[metal::malloc] Attempting to allocate 123 bytes")
    lost = RuntimeError("[ring] Connection reset by peer")
    # Then a full disk pauses, other OS errors propagate, MLX's out of memory restarts lower,
    # a lost peer without a data-parallel run and any other runtime error are crashes
    assert exit_for(full, None).code == exitcodes.EXIT_NO_SPACE and exit_for(other, None) is None
    assert exit_for(oom, None).code == exitcodes.EXIT_OOM_RESTART
    assert exit_for(lost, None).code == exit_for(RuntimeError("boom"), None).code == exitcodes.EXIT_CRASH
    assert exit_for(KeyError("k"), None) is None
