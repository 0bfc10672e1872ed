"""farensectl ask JOB "pergunta": the job's adapters answer on its base model, streamed (inference_qlora.py)."""

from __future__ import annotations

import click

from farensed.core.cli_common import clean_errors, get_home, home_option
from farensed.results.adapters import adapter_folder, choose
from farensed.results.infer_client import infer_cmd, stream
from farensed.results.locate import locate
from farensed.results.rundata import load_run


@click.command()
@click.argument("job")
@click.argument("prompt")
@click.option("--final", is_flag=True, help="The final adapters instead of the best (lowest val loss).")
@click.option("--checkpoint", metavar="NAME", help="A checkpoint's adapters (folder name or step).")
@click.option("--base", is_flag=True, help="The base model without adapters, to compare.")
@click.option("--max-tokens", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--temp", type=click.FloatRange(min=0), default=0.0, show_default=True, help="0 = greedy.")
@home_option
@clean_errors
def ask(job, prompt, final, checkpoint, base, max_tokens, temp, home):
    """Ask a job's fine-tuned model one question."""
    h = get_home(home)
    data = load_run(locate(h, job).run_dir)
    target = choose(data, h, final=final, checkpoint=checkpoint, base=base)
    click.echo(f"[{data.name}: {target.label}{'' if base else ' adapters'} on {target.model}]", err=True)
    with adapter_folder(target, data.run_dir) as folder:
        stream(infer_cmd(target, folder, [prompt], max_tokens, temp), target,
               lambda text: click.echo(text, nl=False))
