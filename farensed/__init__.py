"""farensed: unattended MLX LoRA/QLoRA fine-tuning on one machine.

    from farensed import load
    model, tokenizer = load("checkpoints/demo", adapters="best")

`load` imports mlx only when called, so importing farensed stays light (the daemon and the
client never load mlx).
"""

__version__ = "0.1.0"


def load(run: str, adapters: str = "best", home: str | None = None):
    """(model, tokenizer) of a job (run folder or job id) with its adapters (best, final, step:N),
    as mlx_lm.load gives them; the tokenizer's chat template puts the job's system prompt first."""
    from farensed.worker.loading import load_job_model

    return load_job_model(run, adapters, home)
