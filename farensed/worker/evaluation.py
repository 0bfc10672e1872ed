"""One eval of a run: the validation loss, the answer probe, the best adapters by the job's rule
([evaluate] select) and the patience count; the eval's metrics row carries all of it.

A stop that arrives during the eval (the loss or the probe) leaves it pending: the checkpoint
written next remembers it and a resume redoes the whole eval first, so the best and the
patience count never miss one.
"""

from __future__ import annotations

import time
from dataclasses import asdict

from farensed.core.formats import ProbePlan
from farensed.scoring import best
from farensed.worker.answer_probe import AnswerProbe, ProbeResult
from farensed.worker.model import adapter_weights
from farensed.worker.trainer import EvalInterrupted


def probe_plan(run, probe: AnswerProbe) -> ProbePlan:
    """The rule in force for this run, with the exact probe questions (their digests)."""
    ev, valid = run.spec.evaluate, run.trainer.valid
    return best.rule(ev.select, [s.info() for s in probe.sets], bool(valid and valid.tokens), ev.patience)


def evaluate(run) -> None:
    """Eval now (every rank): loss, probe (rank 0 answers, every rank gets its figures), best."""
    tr = run.trainer
    t0 = time.monotonic()
    try:
        val = tr.evaluate()
    except EvalInterrupted:
        tr.progress.eval_pending = True  # the checkpoint written next remembers it
        return
    eval_seconds = time.monotonic() - t0
    if run.dist.agree_stop(tr.stop_requested):  # the probe waits for the resume, which redoes the eval
        tr.progress.eval_pending = True
        return
    probe = _probe(run)
    tr.progress.eval_pending = False
    if val is None and probe is None:
        return
    if val is not None:
        tr.progress.val_loss = val
    improved = _judge(run, val, probe)
    values = probe.row_values() if probe else {}
    run.record(tr.row("eval", val_loss=val, eval_seconds=round(eval_seconds, 3), best=improved, **values))


def _probe(run) -> ProbeResult | None:
    if not run.probe.sets:
        return None
    run.write_progress("probing")
    got = ProbeResult(**run.dist.from_root(lambda: asdict(run.probe.run(run.model))))
    run.trainer.progress.probe_seconds += got.seconds
    run.log.info("probe_scored", step=run.trainer.progress.step, seconds=round(got.seconds, 3), questions=got.questions,
                 **{k: v for k, v in got.row_values().items() if k != "probe_seconds"})
    return got


def _judge(run, val: float | None, probe: ProbeResult | None) -> bool:
    """Keep the adapters when they beat the best by the rule; else count one more eval without."""
    tr, select = run.trainer, run.state.probe.select
    score = probe.score if probe else None
    if best.improves(select, best.Standing(tr.progress.best_score, tr.progress.best_val_loss), score, val):
        tr.progress.best_val_loss, tr.progress.best_step, tr.progress.evals_since_best = val, tr.progress.step, 0
        tr.progress.best_score = score if select == "answers" else None
        run.writer.best_adapters(lambda: adapter_weights(run.model), run.adapter_config,
                                 lambda tmp: tr.faults.before_tensor_write(tmp, tr.progress.step),
                                 step=tr.progress.step, select=select, probe_f1=score,
                                 val_loss=round(val, 4) if val is not None else None)
        return True
    if (score if select == "answers" else val) is not None:
        tr.progress.evals_since_best += 1
    return False


def early_stop(run) -> str | None:
    """Why training ends before its last step ([evaluate] patience), or None to go on."""
    tr, plan = run.trainer, run.state.probe
    p = tr.progress
    if plan is None or not best.spent(plan.patience, p.evals_since_best) or p.step >= tr.total:
        return None
    said = best.best_words(p.best_step, p.best_score, p.best_val_loss, plan.select)
    return (f"stopped early: no better adapters in {plan.patience} evals ([evaluate] patience), at step {p.step}"
            f" of {tr.total}; best adapters at {said}")
