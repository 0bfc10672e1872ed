"""A job's data for training: its splits (train, valid) tokenized as mlx-lm's datasets do, with
what was cut or missing said once."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

from mlx_lm.tuner.datasets import create_dataset

from farensed.core.datasets import Example, Splits, load_splits
from farensed.core.jobspec import JobSpec
from farensed.core.paths import Home
from farensed.worker import batching


@dataclass(frozen=True)
class JobData:
    splits: Splits
    train: batching.Tokenized
    valid: batching.Tokenized | None
    truncated: int  # examples cut at max_seq_length, train and valid


def tokenize_split(examples: list[Example], tokenizer, spec: JobSpec) -> batching.Tokenized | None:
    if not examples:
        return None
    ds = create_dataset([e.obj for e in examples], tokenizer, SimpleNamespace(mask_prompt=spec.mask_prompt))
    return batching.tokenize([ds.process(ds[i]) for i in range(len(ds))], spec.training.max_seq_length)


def load(spec: JobSpec, home: Home, tokenizer, log) -> JobData:
    splits = load_splits(home.resolve(spec.data), spec.valid_fraction, spec.training.seed)
    train = tokenize_split(splits.train, tokenizer, spec)
    valid = tokenize_split(splits.valid, tokenizer, spec)
    truncated = train.truncated + (valid.truncated if valid else 0)
    if truncated:
        log.warning("sequences_truncated", count=truncated, max_seq_length=spec.training.max_seq_length,
                    longest=max(train.longest, valid.longest if valid else 0))
    if valid is None:
        log.warning("no_validation_set", detail="training without eval")
    log.info("data_loaded", train=len(train.tokens), valid=len(valid.tokens) if valid else 0, source=splits.source)
    return JobData(splits, train, valid, truncated)
