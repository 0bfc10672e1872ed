"""The rule for the best adapters and for stopping early ([evaluate] select, patience), and a job's
time with its evals and scoring, as pure functions."""

from __future__ import annotations

from farensed.core import job_time
from farensed.core.formats import ProbeSetInfo
from farensed.scoring.best import Standing, best_words, improves, rule, spent

TRAIN = ProbeSetInfo(name="train", field="probe", data="the training split", questions=32, available=190, digest="a")


def test_by_answers_the_higher_f1_wins_and_a_tie_goes_to_the_lower_validation_loss():
    best = Standing(score=0.5, val_loss=1.0)
    # Then a higher F1 improves whatever the loss; a lower one never does
    assert improves("answers", best, 0.6, 9.0) and not improves("answers", best, 0.4, 0.1)
    # And an equal F1 (to float noise) improves only with a lower validation loss
    assert improves("answers", best, 0.5 + 1e-6, 0.9) and not improves("answers", best, 0.5, 1.1)
    assert not improves("answers", Standing(0.5, None), 0.5, None)
    # And the first eval is always the best so far; without a probe score nothing is chosen by answers
    assert improves("answers", Standing(None, None), 0.0, None) and not improves("answers", best, None, 0.1)


def test_by_validation_loss_only_the_loss_counts():
    assert improves("val_loss", Standing(0.9, 1.0), 0.0, 0.99)
    assert not improves("val_loss", Standing(0.1, 1.0), 0.9, 1.01)
    assert not improves("val_loss", Standing(None, 1.0), None, None)


def test_patience_is_spent_after_that_many_evals_without_a_better_best():
    assert not spent(0, 99) and not spent(3, 2) and spent(3, 3)


def test_the_rule_in_force_says_which_set_decides_and_falls_back_to_the_loss():
    # Given probe sets (no test set: the training sample first) and a validation split
    by_answers = rule("answers", [TRAIN], has_valid=True, patience=2)
    assert by_answers.select == "answers" and by_answers.patience == 2
    assert by_answers.why == ("highest F1 on 32 training questions (the training split), ties to the lower"
                              " validation loss")
    # Then without a question to ask, answers falls back to the loss, and says why
    assert rule("answers", [], has_valid=True).select == "val_loss"
    assert "no question to ask" in rule("answers", [], has_valid=True).why
    assert rule("val_loss", [TRAIN], has_valid=True).why == "lowest validation loss"
    assert rule("val_loss", [], has_valid=False).why.endswith("the final adapters")


def test_best_in_words():
    assert best_words(240, 0.7123, 1.5, "answers") == "step 240, probe F1 0.71"
    assert best_words(72, None, 0.998, "val_loss") == "step 72, val loss 0.998"
    assert best_words(None, None, None, "answers") == ""


def test_a_jobs_time_counts_its_evals_and_the_final_scoring():
    # Given 384 steps with an eval every 24 (and at step 0): 17 evals; 20 is not a multiple, so the last step adds one
    assert len(job_time.eval_steps(384, 24)) == 17 and job_time.eval_steps(50, 20) == [0, 20, 40, 50]
    assert job_time.evals_left(40, 50, 20) == 1 and job_time.evals_left(40, 50, 20, pending=True) == 2
    # Then the ETA is steps + evals + scoring, the scoring answering each question with 3 models
    assert job_time.scoring_seconds(0.1, 52) == 0.1 * 52 * 3
    assert job_time.eta_seconds(10, 0.5, 2, 3.0, 4.0) == 5.0 + 6.0 + 4.0
