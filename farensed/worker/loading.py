"""`farensed.load`: a job's model and adapters in this process, for applications."""

from __future__ import annotations

from mlx_lm import load

from farensed.core.paths import Home
from farensed.results.adapter_choice import check_copy, pick
from farensed.results.adapters import adapter_folder
from farensed.results.locate import locate
from farensed.results.rundata import load_run
from farensed.serving.chat_template import with_default_system


def load_job_model(run: str, adapters: str = "best", home: str | None = None):
    """mlx_lm.load of the job's base model with the chosen adapters (a checkpoint's are copied
    and checked against its manifest first); the job's system prompt is the template's default."""
    h = Home.from_option(home)
    data = load_run(locate(h, str(run)).run_dir)
    target = pick(data, h, adapters)
    with adapter_folder(target, data.run_dir) as folder:
        check_copy(target, folder)
        model, tokenizer = load(target.model, adapter_path=str(folder) if folder else None,
                                tokenizer_config={"trust_remote_code": target.trust_remote_code})
    if target.system and tokenizer.chat_template:
        tokenizer._tokenizer.chat_template = with_default_system(tokenizer.chat_template, target.system)
    model.eval()
    return model, tokenizer
