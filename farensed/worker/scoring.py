"""The scoring phase after training: held-out questions, then the job's generate prompts, answered
by the base model, the best and the final adapters, and scored; answers.jsonl gets one line each.

What it answers is fixed: the first `[evaluate] examples` questions of the fixed order (all when
there are fewer), the same in every run of the job, never a share of the time. Questions are
answered a batch at a time (worker.answering). The plan is kept in training_state.json, so a
worker killed here answers only what is left, the same questions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from farensed.core import job_time
from farensed.core.atomic import append_line, atomic_write_text
from farensed.core.formats import ANSWERS, TARGETS, AnswerScores, ScoredQuestion, ScoringPlan, read_answers
from farensed.scoring.questions import HeldOut, Question, held_out, prompt_questions, scored_questions, summarize
from farensed.worker import eta
from farensed.worker.answering import Answerer, target_weights
from farensed.worker.trainer import StopRequested

if TYPE_CHECKING:
    from farensed.worker.recipe import Recipe


def score(run: Recipe) -> AnswerScores | None:
    """Run (or resume) the scoring phase; None when there is nothing to ask."""
    held, asked, prompts = _questions(run)
    if not asked and not prompts:
        run.log.info("scoring_skipped", reason="no held-out question and no generate prompt")
        return None
    answerer = Answerer(run.model, run.tokenizer, target_weights(run.dir, run.initial_adapters, TARGETS),
                        run.spec.evaluate.max_tokens, run.spec.generate.max_tokens)
    resumed = run.state.scoring is not None
    plan = run.state.scoring or _plan(run, held, asked, prompts)
    rows = _answer_the_rest(run, answerer, asked[:plan.examples] + prompts, resumed)
    scores = summarize(rows, plan.data, plan.available)
    run.log.info("scoring_done", examples=scores.examples, seconds=scores.seconds,
                 **{f"{t}_f1": s.f1 for t, s in scores.means.items()})
    return scores


def _questions(run: Recipe) -> tuple[HeldOut, list[Question], list[Question]]:
    """The fixed held-out questions (none with examples = 0) and the job's prompts; unaskable ones said once."""
    held = held_out(run.spec, run.home, run.splits)
    asked = scored_questions(run.spec, held)
    if held.unaskable and run.spec.evaluate.examples != 0:
        run.log.warning("questions_unaskable", count=held.unaskable, data=held.data,
                        detail="no question to ask (text data, or completions with an empty prompt): not scored")
    return held, asked, prompt_questions(run.spec, run.splits)


def _answer_the_rest(run: Recipe, answerer: Answerer, wanted: list[Question], resumed: bool) -> list[ScoredQuestion]:
    """Answer the wanted questions not in answers.jsonl yet, a batch at a time, one appended line
    each; a stop request ends it between lines (what is written stays)."""
    rows = _kept_rows(run)
    if resumed:
        run.write_state("scoring")
        run.log.info("scoring_resumed", answered=len(rows), of=len(wanted))
    left = _left(wanted, rows)
    for start in range(0, len(left), answerer.batch):
        for row in answerer.score(left[start:start + answerer.batch]):
            if run.trainer.stop_requested:
                raise StopRequested(f"stopped by signal while scoring ({len(rows)} of {len(wanted)} answered)")
            rows.append(row)
            append_line(run.dir / ANSWERS, row.model_dump_json())
            _progress(run, rows, len(wanted))
            run.trainer.faults.in_scoring(len(rows))
    return rows


def _plan(run: Recipe, held: HeldOut, asked: list[Question], prompts: list[Question]) -> ScoringPlan:
    """Fix what is answered; the time expected comes from the probe's cost per question."""
    total = len(asked) + len(prompts)
    estimate = job_time.scoring_seconds(eta.per_answer(run), total)
    run.write_progress("scoring", scored=0, to_score=total, eta_seconds=round(estimate, 1))
    plan = ScoringPlan(examples=len(asked), available=len(held.questions), prompts=len(prompts), data=held.data,
                       estimated_seconds=round(estimate, 3))
    atomic_write_text(run.dir / ANSWERS, "")  # answers of an older plan go
    run.state = run.state.model_copy(update={"scoring": plan})
    run.write_state("scoring")
    run.log.info("scoring_started", examples=plan.examples, available=plan.available, prompts=len(prompts),
                 data=plan.data, models=list(TARGETS), estimated_seconds=plan.estimated_seconds)
    return plan


def _kept_rows(run: Recipe) -> list[ScoredQuestion]:
    """The answers written so far, the file rewritten to exactly those (a torn last line goes)."""
    rows = read_answers(run.dir / ANSWERS)
    atomic_write_text(run.dir / ANSWERS, "".join(r.model_dump_json() + "\n" for r in rows))
    return rows


def _left(wanted: list[Question], rows: list[ScoredQuestion]) -> list[Question]:
    done = {(r.kind, r.index) for r in rows}
    return [q for q in wanted if (q.kind, q.index) not in done]


def _progress(run: Recipe, rows: list[ScoredQuestion], total: int) -> None:
    each = sum(r.seconds for r in rows) / len(rows)
    run.write_progress("scoring", scored=len(rows), to_score=total, eta_seconds=round(each * (total - len(rows)), 1))
