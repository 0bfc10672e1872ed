"""The scoring phase after training: held-out questions, then the job's generate prompts, answered
by the base model, the best and the final adapters, and scored; answers.jsonl gets one line each.

It is planned once: the first question is answered and timed, and with `examples = "auto"` as
many held-out examples are taken as fit `time_fraction` of the training time. The plan is kept
in training_state.json, so a worker killed here answers only what is left, the same questions.
"""

from __future__ import annotations

from farensed.core.atomic import append_line, atomic_write_text
from farensed.core.formats import ANSWERS, TARGETS, AnswerScores, ScoredQuestion, ScoringPlan, read_answers
from farensed.scoring.questions import HeldOut, Question, held_out, planned_count, prompt_questions, summarize
from farensed.worker.answering import Answerer, target_weights
from farensed.worker.run import Run
from farensed.worker.trainer import StopRequested


def score(run: Run, train_seconds: float) -> AnswerScores | None:
    """Run (or resume) the scoring phase; None when there is nothing to ask."""
    held, asked, prompts = _questions(run)
    if not asked and not prompts:
        run.log.info("scoring_skipped", reason="no held-out question and no generate prompt")
        return None
    answerer = Answerer(run.model, run.tokenizer, target_weights(run.dir, run.initial_adapters, TARGETS),
                        run.spec.evaluate.max_tokens, run.spec.generate.max_tokens)
    resumed = run.state.scoring is not None
    plan = run.state.scoring or _plan(run, answerer, held, asked, prompts, train_seconds)
    rows = _answer_the_rest(run, answerer, asked[:plan.examples] + prompts, resumed)
    scores = summarize(rows, plan.data, plan.available)
    run.log.info("scoring_done", examples=scores.examples, seconds=scores.seconds,
                 **{f"{t}_f1": s.f1 for t, s in scores.means.items()})
    return scores


def _questions(run: Run) -> tuple[HeldOut, list[Question], list[Question]]:
    """The held-out examples (none with examples = 0) and the job's prompts; unaskable ones said once."""
    held = held_out(run.spec, run.home, run.splits)
    asked = held.questions if run.spec.evaluate.examples != 0 else []
    if held.unaskable and run.spec.evaluate.examples != 0:
        run.log.warning("questions_unaskable", count=held.unaskable, data=held.data,
                        detail="no question to ask (text data, or completions with an empty prompt): not scored")
    return held, asked, prompt_questions(run.spec, run.splits)


def _answer_the_rest(run: Run, answerer: Answerer, wanted: list[Question], resumed: bool) -> list[ScoredQuestion]:
    """Answer the wanted questions not in answers.jsonl yet, one appended line each; a stop
    request ends it between questions (what is written stays)."""
    rows = _kept_rows(run)
    if resumed:
        run.write_state("scoring")
        run.log.info("scoring_resumed", answered=len(rows), of=len(wanted))
    for q in _left(wanted, rows):
        if run.trainer.stop_requested:
            raise StopRequested(f"stopped by signal while scoring ({len(rows)} of {len(wanted)} answered)")
        rows.append(answerer.score(q))
        append_line(run.dir / ANSWERS, rows[-1].model_dump_json())
        _progress(run, rows, len(wanted))
        run.trainer.faults.in_scoring(len(rows))
    return rows


def _plan(run: Run, answerer: Answerer, held: HeldOut, asked: list[Question], prompts: list[Question],
          train_seconds: float) -> ScoringPlan:
    """Answer and time the first question, then fix how many held-out examples to answer: with
    "auto", as many as fit time_fraction of the training time, each costed as the first one's time
    scaled by its token limit (answers run to about the same share of their limit)."""
    run.write_progress("scoring")
    head = (asked or prompts)[0]
    first = answerer.score(head)
    per_limit = first.seconds / answerer.limit(head)
    costs = [per_limit * answerer.limit(q) for q in asked]
    ev = run.spec.evaluate
    budget = ev.time_fraction * train_seconds
    n = planned_count(ev.examples, costs, budget)
    estimate = sum(costs[:n]) + sum(per_limit * answerer.limit(q) for q in prompts)
    plan = ScoringPlan(examples=n, available=len(held.questions), prompts=len(prompts), data=held.data,
                       estimated_seconds=round(estimate, 1))
    atomic_write_text(run.dir / ANSWERS, first.model_dump_json() + "\n")  # answers of an older plan go
    run.state = run.state.model_copy(update={"scoring": plan})
    run.write_state("scoring")
    run.log.info("scoring_started", examples=n, available=plan.available, prompts=len(prompts), data=plan.data,
                 models=list(TARGETS), estimated_seconds=plan.estimated_seconds,
                 budget_seconds=round(budget, 1) if ev.examples == "auto" else None)
    return plan


def _kept_rows(run: Run) -> list[ScoredQuestion]:
    """The answers written so far, the file rewritten to exactly those (a torn last line goes)."""
    rows = read_answers(run.dir / ANSWERS)
    atomic_write_text(run.dir / ANSWERS, "".join(r.model_dump_json() + "\n" for r in rows))
    return rows


def _left(wanted: list[Question], rows: list[ScoredQuestion]) -> list[Question]:
    done = {(r.kind, r.index) for r in rows}
    return [q for q in wanted if (q.kind, q.index) not in done]


def _progress(run: Run, rows: list[ScoredQuestion], total: int) -> None:
    each = sum(r.seconds for r in rows) / len(rows)
    run.write_progress("scoring", scored=len(rows), to_score=total, eta_seconds=round(each * (total - len(rows)), 1))
