"""farensectl serve JOB: the job's model and adapters behind mlx-lm's OpenAI-compatible server."""

from __future__ import annotations

from textwrap import shorten

import click

from farensed.core.cli_common import clean_errors, get_home, home_option
from farensed.results.adapter_choice import CHOICE_HELP, check_copy, pick, still_training
from farensed.results.adapters import adapter_folder
from farensed.results.locate import locate
from farensed.results.rundata import load_run
from farensed.results.serve_client import free_port, run_server
from farensed.serving.chat_template import model_folder, read_chat_template, with_default_system
from farensed.serving.child import Stopped, stop_signals
from farensed.serving.server_cmd import ServeSpec, checked_host, curl_example, is_loopback


def _ready(data, target, spec):
    question = data.spec.generate.prompts[0] if data.spec and data.spec.generate.prompts else "Hello"

    def show(url: str, pid: int) -> None:
        click.echo(f"serving {data.name}: {target.label} adapters on {target.model} (mlx_lm.server, pid {pid})")
        if target.system:
            click.echo(f"  system prompt, when a request has none: {shorten(target.system, 80)}")
        click.echo(f"  OpenAI API: {url}  (Ctrl-C stops it)")
        click.echo(f"  try: {curl_example(url, question)}", nl=True)
    return show


@click.command()
@click.argument("job")
@click.option("--adapters", "choice", default="best", show_default=True, help=CHOICE_HELP)
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="0 = any free port.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--allow-remote", is_flag=True, help="Allow a --host other machines can reach (no authentication!).")
@home_option
@clean_errors
def serve(job, choice, port, host, allow_remote, home):
    """Serve a job's fine-tuned model over an OpenAI-compatible API (mlx_lm.server)."""
    h = get_home(home)
    data = load_run(locate(h, job).run_dir)
    target = pick(data, h, choice)
    host = checked_host(host, allow_remote)
    if not is_loopback(host):
        click.echo(f"warning: listening on {host}: anyone who can reach it may use the model, and mlx_lm.server"
                   " loads any model or adapter folder a request names", err=True)
    if still_training(data):
        click.echo(f"note: {data.name} is still training: serving {target.label}; serve again for a newer one",
                   err=True)
    template = read_chat_template(model_folder(target.model))
    if template is None and target.system:
        click.echo("note: the model has no chat template, so mlx_lm.server cannot put the job's system prompt"
                   " first; send it as the first message", err=True)
    g = data.spec.generate if data.spec else None
    spec = ServeSpec(model=target.model, adapters=None, host=host, port=free_port(host, port),
                     chat_template=with_default_system(template, target.system) if template else None,
                     temperature=g.temperature if g else 0.0, max_tokens=g.max_tokens if g else 512,
                     trust_remote_code=target.trust_remote_code)
    try:
        with stop_signals(), adapter_folder(target, data.run_dir) as folder:
            check_copy(target, folder)
            run_server(spec.with_adapters(folder), _ready(data, target, spec))
    except Stopped as e:
        click.echo(f"stopped ({e}): mlx_lm.server ended", err=True)
        raise SystemExit(e.exit_code) from None
