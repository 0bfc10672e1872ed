"""Pure supervisor policy: classification, decisions, back-off, downshift, next job, stall."""

from __future__ import annotations

import signal

from farensed.core import exitcodes as ec
from farensed.core.formats import TrainingState
from farensed.daemon import policy
from farensed.daemon.policy import Candidate, Outcome, classify, decide
from farensed.worker.faults import MESSAGES

OOM_TAIL = "step 3\nlibc++abi: terminating due to uncaught exception: " + MESSAGES["oom"] + "\n"


def test_named_exit_codes_are_classified():
    assert classify(ec.EXIT_OK).kind == "ok"
    assert classify(ec.EXIT_STOPPED).kind == "stopped"
    assert classify(ec.EXIT_BAD_JOB).kind == "bad_job"
    assert classify(ec.EXIT_OOM_RESTART).kind == "oom"
    assert classify(ec.EXIT_OOM_EXHAUSTED).kind == "oom_exhausted"
    assert classify(ec.EXIT_DIVERGED).kind == "diverged"
    assert classify(ec.EXIT_NO_SPACE).kind == "no_space"


def test_abort_with_metal_oom_message_is_out_of_memory():
    assert classify(-signal.SIGABRT, OOM_TAIL).kind == "oom"
    assert classify(-signal.SIGSEGV, MESSAGES["oom_malloc"]).kind == "oom"


def test_sigkill_is_oom_only_with_high_memory_seen():
    assert classify(-signal.SIGKILL, "", memory_share=0.95).kind == "oom"
    out = classify(-signal.SIGKILL, "", memory_share=0.1)
    assert out == Outcome("crash", "terminated unexpectedly (SIGKILL)")


def test_gpu_fault_first_retries_then_downshifts():
    out = classify(-signal.SIGABRT, MESSAGES["gpu_fault"])
    assert out.kind == "gpu_fault"
    assert decide(out, None, 0, 3, gpu_faults=0) == policy.Decision("restart", out.detail, downshift=False)
    assert decide(out, None, 0, 3, gpu_faults=1).downshift


def test_crash_retries_with_backoff_then_fails():
    out = classify(1, "Traceback...\nValueError: boom\n")
    first = decide(out, None, 0, 2, 0)
    assert (first.action, first.delay, first.counts_as_crash) == ("restart", 2.0, True)
    assert decide(out, None, 1, 2, 0).delay == 4.0
    last = decide(out, None, 2, 2, 0)
    assert last.action == "fail" and "gave up after 2 restart(s)" in last.reason


def test_backoff_doubles_and_is_capped():
    assert [policy.backoff(n) for n in (1, 2, 3)] == [2.0, 4.0, 8.0]
    assert policy.backoff(30) == 300.0


def test_graceful_stop_follows_the_request():
    stopped = classify(ec.EXIT_STOPPED)
    assert decide(stopped, "cancel", 0, 3, 0).action == "cancel"
    assert decide(stopped, "pause", 0, 3, 0).action == "pause"
    assert decide(stopped, None, 0, 3, 0).action == "restart"


def test_hopeless_ends_fail_with_the_workers_reason():
    d = decide(classify(ec.EXIT_DIVERGED), None, 0, 3, 0, worker_reason="loss is NaN for 5 steps")
    assert d == policy.Decision("fail", "loss is NaN for 5 steps")
    assert decide(classify(ec.EXIT_NO_SPACE), None, 0, 3, 0).action == "pause"


def test_oom_downshift_halves_micro_batch_and_keeps_effective_batch():
    st = TrainingState(micro_batch=4, grad_accumulation=2, effective_batch=8, step=3)
    low = policy.downshift_state(st, "oom", "process_death", now=1.0)
    assert (low.micro_batch, low.grad_accumulation, low.grad_checkpoint) == (2, 4, False)
    assert low.downshifts[-1].source == "process_death" and low.downshifts[-1].step == 3
    one = TrainingState(micro_batch=1, grad_accumulation=8, effective_batch=8)
    assert policy.downshift_state(one, "oom", "process_death", 1.0).grad_checkpoint is True
    last = one.model_copy(update={"grad_checkpoint": True})
    assert policy.downshift_state(last, "oom", "process_death", 1.0) is None


def test_next_job_orders_by_priority_then_arrival():
    jobs = [Candidate("a", "queued", 0, 1), Candidate("b", "queued", 5, 3), Candidate("c", "queued", 5, 2)]
    assert policy.next_job(jobs, now=0) == "c"


def test_a_job_waiting_to_restart_holds_the_slot():
    jobs = [Candidate("a", "queued", 9, 1), Candidate("r", "running", 0, 2, not_before=10.0)]
    assert policy.next_job(jobs, now=5.0) is None
    assert policy.next_job(jobs, now=10.0) == "r"


def test_stall_watchdog():
    assert policy.stalled(last_change=0.0, now=11.0, stall_seconds=10, phase="training")
    assert not policy.stalled(0.0, 9.0, 10, "training")
    assert not policy.stalled(0.0, 1e9, 0, "training")


def test_a_first_load_or_compile_is_not_a_stall():
    # Loading a model and compiling kernels write nothing for minutes (CUDA's first compile: ~170 s)
    for phase in ("loading", "compiling", None):
        assert not policy.stalled(0.0, 600.0, 10, phase)
        assert policy.stalled(0.0, policy.STARTUP_STALL_SECONDS + 1, 10, phase)


def test_sigterm_we_sent_during_loading_is_a_graceful_stop():
    assert classify(-signal.SIGTERM, stop_sent=True).kind == "stopped"
    assert classify(-signal.SIGTERM, stop_sent=False).kind == "crash"


def test_a_job_that_ended_early_is_done_with_its_reason():
    # Given a worker that exited 0 with a reason in training_state (patience)
    why = "stopped early: no better adapters in 2 evals ([evaluate] patience), at step 4 of 12; best adapters at step 0"
    # Then the job is done, and the reason is the record's
    decision = decide(Outcome("ok", "exit 0"), None, 0, 3, 0, why)
    assert (decision.action, decision.reason) == ("done", why)
    assert decide(Outcome("ok", "exit 0"), None, 0, 3, 0, None).reason is None
