"""Loading the base model and turning its target modules into LoRA/DoRA layers (mlx-lm pieces)."""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten
from mlx_lm import load as mlx_load
from mlx_lm.tuner.utils import linear_to_lora_layers
from mlx_lm.utils import get_total_parameters

from farensed.core.errors import FarensedError
from farensed.core.formats import AdapterConfig
from farensed.core.jobspec import JobSpec
from farensed.core.model_source import local_or_hub
from farensed.core.paths import Home


class BadJob(FarensedError):
    """The job cannot run as written (exit EXIT_BAD_JOB; retrying does not help)."""


def model_path(spec: JobSpec, home: Home) -> str:
    """A local folder (resolved against the home) or, failing that, the hub id as written."""
    return local_or_hub(spec.model, home)


def load_base(spec: JobSpec, home: Home):
    """The model and tokenizer through mlx_lm.load."""
    return mlx_load(model_path(spec, home), trust_remote_code=spec.trust_remote_code)


def lora_keys(model: nn.Module, targets: list[str]) -> list[str]:
    """Paths inside one block (e.g. self_attn.q_proj) for the short names the guide uses."""
    found = {}
    for path, module in model.layers[0].named_modules():
        short = path.rsplit(".", 1)[-1]
        if short in targets and isinstance(module, (nn.Linear, nn.QuantizedLinear)):
            found.setdefault(short, path)
    missing = [t for t in targets if t not in found]
    if missing:
        names = sorted({p.rsplit(".", 1)[-1] for p, m in model.layers[0].named_modules()
                        if isinstance(m, (nn.Linear, nn.QuantizedLinear))})
        raise BadJob(f"lora.target_modules: {', '.join(missing)} not in this model (it has {', '.join(names)})")
    return [found[t] for t in targets]


def lora_parameters(spec: JobSpec, keys: list[str]) -> dict:
    return {"rank": spec.lora.rank, "scale": spec.lora.scale, "dropout": spec.lora.dropout, "keys": keys}


def apply_lora(model: nn.Module, spec: JobSpec) -> AdapterConfig:
    """Freeze the base, add adapters to the last num_layers blocks; returns adapter_config."""
    keys = lora_keys(model, spec.lora.target_modules)
    params = lora_parameters(spec, keys)
    model.freeze()
    mx.random.seed(spec.training.seed)  # adapter init is part of the run's determinism
    linear_to_lora_layers(model, spec.lora.num_layers, params, use_dora=spec.lora.type == "dora")
    n_layers = len(model.layers) if spec.lora.num_layers < 0 else min(spec.lora.num_layers, len(model.layers))
    return AdapterConfig(fine_tune_type=spec.lora.type, num_layers=n_layers, lora_parameters=params)


def parameter_counts(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameters; quantized weights counted at their unpacked size."""
    trainable = sum(v.size for _, v in tree_flatten(model.trainable_parameters()))
    return trainable, get_total_parameters(model)


def adapter_weights(model: nn.Module) -> dict[str, mx.array]:
    return dict(tree_flatten(model.trainable_parameters()))


def load_adapter_file(model: nn.Module, file: Path) -> None:
    model.load_weights(list(mx.load(str(file)).items()), strict=False)
