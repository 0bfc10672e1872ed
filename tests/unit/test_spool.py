"""Spool building blocks on a real folder: ids, ignored names, stability, the transition function."""

from __future__ import annotations

import time

import pytest
import structlog

from farensed.core.spool import records
from farensed.core.spool.folders import SpoolDirs, dropped_files, ignored
from farensed.core.spool.records import JobRecord, id_base, unique_id
from farensed.daemon.intake import Stability
from farensed.daemon.transition import TransitionError, admit, transition


def test_ids_come_from_file_names_and_never_collide():
    assert id_base("farense.toml") == "farense"
    assert id_base("my job (1).toml") == "my-job-1"
    assert unique_id("farense", {"farense", "farense-2"}) == "farense-3"


@pytest.mark.parametrize("name", [".farense.toml.swp", "farense.toml~", "4913", "x.tmp", ".hidden.toml"])
def test_editor_temporaries_are_ignored(name):
    assert ignored(name)


def test_only_toml_drops_are_listed(tmp_path):
    for n in ("a.toml", ".a.toml.swp", "b.toml~", "notes.txt"):
        (tmp_path / n).write_text("x")
    (tmp_path / "queued").mkdir()
    assert [p.name for p in dropped_files(tmp_path)] == ["a.toml"]


def test_file_is_stable_only_after_two_equal_looks(tmp_path):
    f, s = tmp_path / "a.toml", Stability(min_interval=0.1)
    f.write_text("name = ")
    assert not s.check(f, 0.0)
    f.write_text("name = 'x'")
    assert not s.check(f, 0.2)  # changed since the last look
    assert not s.check(f, 0.25)  # same, but too soon
    assert s.check(f, 0.35)


def test_transition_moves_file_and_refuses_forbidden_changes(tmp_path):
    dirs, log = SpoolDirs(tmp_path / "spool"), structlog.get_logger()
    dirs.ensure()
    dirs.job_file("queued", "a").write_text("bytes")
    now = time.time()
    rec = admit(dirs, JobRecord(id="a", file_name="a.toml", state="queued", since=now, seq=1,
                                submitted_at=now), log)
    rec = transition(dirs, rec, "running", log)
    rec = transition(dirs, rec, "done", log, reason=None)
    assert dirs.job_file("done", "a").read_text() == "bytes"
    assert [h.to_state for h in records.load(dirs.jobs, "a").history] == ["queued", "running", "done"]
    with pytest.raises(TransitionError, match="cannot go from done to queued"):
        transition(dirs, rec, "queued", log)


def test_an_id_is_never_given_twice_even_while_its_file_is_in_flight(tmp_path):
    # Given a submit that took "same", whose file the daemon is moving (in no folder a listing sees)
    from farensed.core.paths import Home
    from farensed.core.spool.drops import drop

    home = Home(tmp_path)
    assert drop(home, "same.toml", b"x = 1\n") == "same"
    (tmp_path / "spool" / "same.toml").unlink()
    # When another submit of the same file drops it
    second = drop(home, "same.toml", b"x = 1\n")
    # Then it gets an id of its own (the first submit's id stays reserved), and ids differing in case collide
    assert second == "same-2"
    assert drop(home, "SAME.toml", b"x = 1\n") == "SAME-3"
