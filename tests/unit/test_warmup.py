"""scripts/setup's kernel warm-up: the demo job cut to two steps and one scored question (pure; the
compile it pays is measured in the README, not here: it takes 20-40 s)."""

from __future__ import annotations

from farensed.core.jobfile import parse_job
from farensed.core.paths import REPO_ROOT, Home
from farensed.demo.model import warmup


def test_the_warm_up_job_is_the_demo_job_cut_short():
    # Given the demo job
    demo = parse_job(warmup.DEMO_JOB.read_text())
    # When it is cut for the warm-up
    warm = parse_job(warmup.warm_job(warmup.DEMO_JOB.read_text()))
    # Then it trains the same model, data and step settings for two steps, then scores one question
    assert warm.training.max_steps == 2 and warm.evaluate.examples == 1
    assert len(warm.generate.prompts) == 1
    same = ("model", "data", "mask_prompt", "lora")
    assert all(getattr(warm, k) == getattr(demo, k) for k in same)
    assert warm.training.model_copy(update={"max_steps": None}) == demo.training


def test_the_stamp_follows_the_demo_job_and_model():
    home = Home(REPO_ROOT)
    text = warmup.DEMO_JOB.read_text()
    assert warmup.stamp_name(home, text) == warmup.stamp_name(home, text)
    assert warmup.stamp_name(home, text) != warmup.stamp_name(home, text + "\n# changed\n")
