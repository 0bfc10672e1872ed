"""The end of a run: final and best adapter folders, answers to the job's prompts, summary;
then, after the scoring phase, the summary with the answer scores and the state done."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlx_lm.sample_utils import make_sampler

from farensed.core.atomic import atomic_write_json
from farensed.core.formats import (
    ADAPTERS,
    BEST_ADAPTERS,
    SUMMARY,
    TRAINING_CONFIG,
    Answer,
    AnswerScores,
    TrainingSummary,
    read_model,
)
from farensed.core.jobspec import Generate
from farensed.core.system_prompt import job_system
from farensed.worker import outputs
from farensed.worker.answering import batched, prompt_ids
from farensed.worker.infer import chat_messages
from farensed.worker.model import adapter_weights, load_adapter_file, parameter_counts

if TYPE_CHECKING:
    from farensed.worker.recipe import Recipe


def answers(model, tokenizer, g: Generate, system: str | None) -> list[Answer]:
    """Greedy (or sampled) replies to the job's prompts through the model's chat template (after the
    job's system prompt), decoded together."""
    ids = [prompt_ids(tokenizer, chat_messages(p, system)) for p in g.prompts]
    texts = batched(model, tokenizer, ids, [g.max_tokens] * len(ids), make_sampler(temp=g.temperature))
    return [Answer(prompt=p, answer=t) for p, t in zip(g.prompts, texts)]


def final_outputs(run: Recipe) -> TrainingSummary:
    """Write the final outputs and enter the scoring phase; idempotent, so a crash here is redone
    on the next start."""
    tr, spec, out = run.trainer, run.spec, run.dir
    cfg = run.adapter_config
    outputs.write_adapter_folder(out, adapter_weights(run.model), cfg)
    best = out / BEST_ADAPTERS
    if not (best / ADAPTERS).exists():  # no validation set: the final ones are the best we know
        outputs.write_adapter_folder(best, adapter_weights(run.model), cfg)
    atomic_write_json(out / TRAINING_CONFIG,
                      outputs.training_config(spec, run.model_path, str(run.home.resolve(spec.data)), cfg))
    outputs.export_metrics(out, tr.progress.metrics)
    run.write_progress("generating")
    replies = []
    if spec.generate.prompts:
        load_adapter_file(run.model, best / ADAPTERS)
        run.model.eval()
        replies = answers(run.model, run.tokenizer, spec.generate, job_system(spec, run.splits))
    summary = build_summary(run, replies)
    atomic_write_json(out / SUMMARY, summary)
    run.write_state("scoring")
    return summary


def complete(run: Recipe, scores: AnswerScores | None) -> TrainingSummary:
    """The summary with the answer scores and the restarts so far (a kill while scoring is one more
    than the summary written before scoring counted); the run is done."""
    update = {"scores": scores, "restarts": run.state.restarts}
    summary = read_model(run.dir / SUMMARY, TrainingSummary).model_copy(update=update)
    atomic_write_json(run.dir / SUMMARY, summary)
    run.write_state("done", summary.stopped_early)
    run.write_progress("done")
    return summary


def build_summary(run: Recipe, answers: list[Answer]) -> TrainingSummary:
    tr = run.trainer
    p = tr.progress
    trains = [r for r in p.metrics if r.kind == "train" and r.train_loss is not None]
    evals = [r for r in p.metrics if r.kind == "eval"]
    trainable, total = parameter_counts(run.model)
    secs = p.elapsed
    return TrainingSummary(
        job=run.spec.name, model=run.model_path, steps=p.step, epochs=round(p.step / tr.per_epoch, 3),
        final_train_loss=trains[-1].train_loss if trains else None,
        final_val_loss=evals[-1].val_loss if evals else None, best_val_loss=p.best_val_loss,
        best_step=p.best_step, seconds=round(secs, 3), tokens=p.tokens_seen,
        tokens_per_sec=round(p.tokens_seen / secs, 1) if secs else 0.0,
        load_seconds=run.state.load_seconds, compile_seconds=run.state.compile_seconds,
        trainable_parameters=trainable, total_parameters=total, downshifts=run.planner.downshifts,
        memory_model=run.planner.memory_model, restarts=run.state.restarts,
        skipped_nonfinite_steps=p.skipped_nonfinite, truncated_examples=run.truncated,
        answers=answers, adapters=str(run.dir), best_adapters=str(run.dir / BEST_ADAPTERS),
        best_score=p.best_score, probe=run.state.probe, probe_seconds=round(p.probe_seconds, 3),
        stopped_early=run.stopped_early)
