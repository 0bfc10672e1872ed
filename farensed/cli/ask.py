"""farensectl ask JOB "pergunta" [...] [-n N]: the job's adapters answer on its base model
(inference_qlora.py); one question streams, several (and -n's held-out ones) are answered together."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import click

from farensed.core.cli_common import clean_errors, get_home, home_option
from farensed.core.errors import FarensedError
from farensed.results.adapters import adapter_folder, choose
from farensed.results.infer_client import answers, infer_cmd, stream
from farensed.results.locate import locate
from farensed.results.rundata import RunData, load_run


@click.command()
@click.argument("job")
@click.argument("prompts", nargs=-1)
@click.option("-n", "count", type=click.IntRange(min=1),
              help="Also ask the job's first N held-out questions (the order the scoring uses), with their references.")
@click.option("--final", is_flag=True, help="The final adapters instead of the best (by the job's [evaluate] select).")
@click.option("--checkpoint", metavar="NAME", help="A checkpoint's adapters (folder name or step).")
@click.option("--base", is_flag=True, help="The base model without adapters, to compare.")
@click.option("--max-tokens", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--temp", type=click.FloatRange(min=0), default=0.0, show_default=True, help="0 = greedy.")
@home_option
@clean_errors
def ask(job, prompts, count, final, checkpoint, base, max_tokens, temp, home):
    """Ask a job's fine-tuned model one question (streamed) or several (answered together)."""
    h = get_home(home)
    data = load_run(locate(h, job).run_dir)
    if not prompts and not count:
        raise FarensedError("nothing to ask: give a question, or -n N for the job's held-out questions")
    target = choose(data, h, final=final, checkpoint=checkpoint, base=base)
    click.echo(f"[{data.name}: {target.words} on {target.model}]", err=True)
    with adapter_folder(target, data.run_dir) as folder:
        if len(prompts) == 1 and not count:
            stream(infer_cmd(target, folder, list(prompts), max_tokens, temp), target,
                   lambda text: click.echo(text, nl=False))
            return
        questions = _held_out(data, h, count) if count else []
        with tempfile.TemporaryDirectory(prefix="farensed-ask-") as tmp:
            chats = _chats_file(questions, Path(tmp)) if questions else None
            got = answers(infer_cmd(target, folder, list(prompts), max_tokens, temp, True, chats), target)
    _show([(p, None) for p in prompts] + [(q.text, q.reference) for q in questions], got)


def _held_out(data: RunData, home, count: int) -> list:
    """The first `count` held-out questions, in the order the scoring takes them."""
    from farensed.scoring.questions import held_out

    if data.spec is None:
        raise FarensedError(f"{data.run_dir / 'job.toml'}: missing or invalid, cannot tell its held-out questions")
    return held_out(data.spec, home).questions[:count]


def _chats_file(questions: list, tmp: Path) -> Path:
    chats = tmp / "questions.jsonl"
    chats.write_text("".join(json.dumps({"messages": q.messages}, ensure_ascii=False) + "\n" for q in questions),
                     encoding="utf-8")
    return chats


def _show(asked: list[tuple[str, str | None]], got: list[str]) -> None:
    """Each question and answer; a held-out one with its reference and F1."""
    from farensed.scoring.metrics import f1

    for (question, ref), answer in zip(asked, got):
        click.echo(f"Q: {question}\nA: {answer or '(empty)'}")
        if ref is not None:
            click.echo(f"   reference: {ref} (F1 {f1(answer, ref):.2f})")
        click.echo("")
