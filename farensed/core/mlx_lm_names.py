"""mlx-lm's names for what a farensed job file calls otherwise, and keys put in the wrong table:
one table, read by the job file's "unknown key" error (jobfile.py)."""

from __future__ import annotations

# mlx-lm's lora config key (or CLI flag) -> where farensed keeps it, and how it differs when it does
MLX_LM = {
    "iters": ("training", "max_steps", "a step is one optimizer update; or set [training] epochs"),
    "save_every": ("cadence", "checkpoint_every", None),
    "steps_per_eval": ("cadence", "eval_every", None),
    "steps_per_report": ("cadence", "log_every", None),
    "val_batches": ("cadence", "val_batches", None),
    "test_batches": ("evaluate", "examples", "held-out questions answered after training"),
    "fine_tune_type": ("lora", "type", None),
    "grad_accumulation_steps": ("training", "grad_accumulation", None),
    "lr_schedule": ("training", "schedule", "with [training] warmup_steps and min_learning_rate"),
    "lora_parameters": ("lora", "rank", "and [lora] scale, dropout"),
    "adapter_path": ("", "output", None),
    "resume_adapter_file": (None, None, "farensed resumes from the newest checkpoint by itself"),
    "train": (None, None, "every job trains"),
    "test": ("evaluate", "examples", "the held-out set is scored after training"),
}


def place(section: str, key: str) -> str:
    return f"{key}, at the top of the file" if not section else f"[{section}] {key}"


def hint(loc: tuple, tables: dict[str, list[str]]) -> str | None:
    """What an unknown key at `loc` (("iters",) or ("lora", "learning_rate")) is in farensed, or None.
    `tables`: each table's keys, "" for the top level."""
    key, here = str(loc[-1]), str(loc[0]) if len(loc) > 1 else ""
    if key in MLX_LM:
        section, name, note = MLX_LM[key]
        if section is None:
            return f"mlx-lm's {key} has no key in farensed: {note}"
        return f"in farensed this is {place(section, name)} (mlx-lm's name)" + (f"; {note}" if note else "")
    homes = [t for t, keys in tables.items() if key in keys and t != here]
    if homes:
        return f"in farensed this is {' or '.join(place(t, key) for t in homes)}"
    return None
