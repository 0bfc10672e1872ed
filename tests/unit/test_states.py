"""The job's state machine (core/states.py): every state has its moves, and every control verb's
target is a move the transition function allows."""

from __future__ import annotations

from typing import get_args

from farensed.core.states import BUSY, FINISHED, MOVES, STATES, VERBS, JobState, can_move, verb_target


def test_every_state_has_its_moves_and_only_known_states_appear():
    assert set(STATES) == set(get_args(JobState))
    assert set(MOVES) == {None, *STATES}
    assert all(targets <= set(STATES) for targets in MOVES.values())
    assert FINISHED | BUSY <= set(STATES) and not FINISHED & BUSY


def test_a_verb_only_moves_a_job_the_way_the_transition_function_allows():
    for verb, rules in VERBS.items():
        for state, target in rules.items():
            # "stop" asks the running worker; the job moves when it has stopped (to paused or cancelled)
            assert target == "stop" and state == "running" or can_move(state, target), (verb, state)


def test_finished_jobs_only_come_back_by_retry_and_done_never():
    assert MOVES["done"] == frozenset() and MOVES["rejected"] == frozenset()
    assert verb_target("retry", "failed") == "queued" and verb_target("retry", "done") is None
    assert verb_target("resume", "running") is None
