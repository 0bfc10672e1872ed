"""`farensectl validate`: every problem of a job file (schema, paths, data) and what the data looks like."""

from __future__ import annotations

import importlib.util
import os
import statistics
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from textwrap import shorten

from farensed.core.data_checks import no_targets_problem, target_count, token_pairs
from farensed.core.datasets import Example, Splits, load_splits, read_jsonl
from farensed.core.errors import DataError, JobFileError
from farensed.core.jobfile import Problem, key_lines, load_job
from farensed.core.jobspec import JobSpec
from farensed.core.model_source import looks_like_hub_id
from farensed.core.output_rule import output_dir, output_problem, recorded_outputs
from farensed.core.paths import Home
from farensed.core.system_prompt import data_system
from farensed.core.units import GIB
from farensed.host.cluster import HostfileError, is_this_machine, rank_hosts
from farensed.memory.estimate import estimate
from farensed.memory.plan import MARGIN, PAD_TO, padded_width


@dataclass
class Report:
    """Problems (any one makes the job invalid) and notes on what was seen."""

    file: str
    spec: JobSpec | None = None
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _check_paths(rep: Report, spec: JobSpec, home: Home, lines: dict, job_id: str,
                 other_outputs: dict[str, str]) -> None:
    add = lambda key, msg: rep.problems.append(Problem(rep.file, msg, lines.get(key), key))  # noqa: E731
    model = home.resolve(spec.model)
    if model.is_dir():
        if not (model / "config.json").is_file():
            add("model", f"{model} has no config.json: not an mlx-lm model folder")
    elif looks_like_hub_id(spec.model, home):
        rep.notes.append(f"model {spec.model!r} is not a local folder: it will be fetched from the hub")
    else:
        add("model", f"model folder not found: {model}")
    data = home.resolve(spec.data)
    if not data.exists():
        add("data", f"data not found: {data}")
    if spec.evaluate.data:
        _check_questions_file(add, home.resolve(spec.evaluate.data))
    problem = output_problem(output_dir(spec, job_id, home), home, other_outputs, job_id)
    if problem:
        add("output", problem)


def _check_questions_file(add, path: Path) -> None:
    """[evaluate] data must be JSON lines of examples, checked now rather than after training."""
    if not path.is_file():
        add("evaluate.data", f"held-out questions file not found: {path}")
        return
    bad: list[str] = []
    try:
        found = read_jsonl(path, bad)
    except (OSError, DataError) as e:
        add("evaluate.data", str(e))
        return
    if bad:
        add("evaluate.data", f"{bad[0]}" + (f" (and {len(bad) - 1} more bad lines)" if len(bad) > 1 else ""))
    elif not found:
        add("evaluate.data", f"{path}: no examples in it")


def _check_extras(rep: Report, spec: JobSpec, lines: dict) -> None:
    """Optional packages the job asks for are installed here (the worker imports them)."""
    if spec.report.tensorboard and importlib.util.find_spec("tensorboardX") is None:
        rep.problems.append(Problem(rep.file, "TensorBoard event files need tensorboardX, which is not installed:"
                                    " pip install 'farensed[tensorboard]' (or set tensorboard = false)",
                                    lines.get("report.tensorboard"), "report.tensorboard"))


def _check_distributed(rep: Report, spec: JobSpec, home: Home, lines: dict) -> None:
    """The hostfile reads, the ring backend has IPs, and rank 0 (which owns the run folder) is here."""
    dist = spec.distributed
    key = "distributed.hostfile" if dist.hostfile else "distributed.hosts" if dist.hosts else "distributed"
    add = lambda msg: rep.problems.append(Problem(rep.file, msg, lines.get(key) or lines.get("distributed"), key))  # noqa: E731
    try:
        hosts = rank_hosts(dist, home)
    except HostfileError as e:
        add(str(e))
        return
    if len(hosts) < 2:
        add(f"{len(hosts)} host in the hostfile: a data-parallel job needs 2 or more")
    if dist.backend == "ring" and not all(h.ips for h in hosts):
        add("the ring backend needs `ips` for every host of the hostfile (mlx.distributed_config writes them)")
    if not is_this_machine(hosts[0]):
        add(f"rank 0 would run on {hosts[0].ssh}, not on this machine: list this machine first (rank 0 writes"
            " the run folder the daemon watches)")
    rep.notes.append(f"distributed: {len(hosts)} ranks, {dist.backend} backend, on "
                     + ", ".join(dict.fromkeys(h.ssh for h in hosts)))


def _tokenizer(spec: JobSpec, home: Home):
    """The model's own tokenizer (with its chat template), or None if the folder has none."""
    model = home.resolve(spec.model)
    if not (model / "tokenizer_config.json").is_file():
        return None
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from transformers import AutoTokenizer  # heavy; only here (no mlx)

    return AutoTokenizer.from_pretrained(str(model))


def _describe_split(name: str, exs: list[Example], lengths: list[int] | None, max_len: int) -> str:
    fmt = exs[0].format if exs else "-"
    answers = Counter(e.answer for e in exs)
    dups = len(exs) - len({(e.answer, repr(e.obj)) for e in exs})
    text = f"{name}: {len(exs)} examples ({fmt}), {len(answers)} distinct answers, {dups} exact duplicates"
    if lengths:
        over = sum(n > max_len for n in lengths)
        text += (f"; tokens min {min(lengths)} / median {int(statistics.median(lengths))} / max {max(lengths)},"
                 f" {over} longer than max_seq_length {max_len} (truncated)")
    return text


def _check_data(rep: Report, spec: JobSpec, home: Home, lines: dict, measure_tokens: bool = True) -> None:
    problems: list[str] = []
    try:
        splits: Splits = load_splits(home.resolve(spec.data), spec.valid_fraction, spec.training.seed, problems)
    except (DataError, OSError, UnicodeDecodeError) as e:
        rep.problems.append(Problem(rep.file, str(e), lines.get("data"), "data"))
        return
    rep.problems += [Problem(rep.file, f"data line: {p}", lines.get("data"), "data") for p in problems]
    rep.notes.append(f"data: {splits.source}")
    _note_system(rep, spec, splits)
    if home.resolve(spec.data).is_file():
        n_all = len(splits.train) + len(splits.valid)
        n_answers = len({e.answer.strip().casefold() for e in splits.train + splits.valid})
        rep.notes.append(f"{n_all} examples share {n_answers} distinct answers: the split keeps every answer's"
                         f" examples on one side, so paraphrased questions do not leak into validation")
    if spec.mask_prompt:
        if splits.train and splits.train[0].format == "text":
            rep.problems.append(Problem(rep.file, "mask_prompt needs chat or completions data, not text",
                                        lines.get("mask_prompt"), "mask_prompt"))
    if len(splits.train) < spec.training.batch_size:
        rep.problems.append(Problem(rep.file, f"only {len(splits.train)} training examples, fewer than one"
                                    f" batch ({spec.training.batch_size})", lines.get("training.batch_size"),
                                    "training.batch_size"))
    tok = _tokenizer(spec, home) if measure_tokens else None
    longest = 0
    for name, exs in (("train", splits.train), ("valid", splits.valid), ("test", splits.test)):
        if exs or name != "test":
            pairs = token_pairs(tok, exs, spec.mask_prompt) if exs and tok is not None else None
            lengths = [n for n, _ in pairs] if pairs else None
            longest = max([longest, *(lengths or [])]) if name == "train" else longest
            if (name == "train" and pairs and not _no_targets(rep, spec, home, lines, pairs)
                    and min(lengths) > spec.training.max_seq_length):
                rep.problems.append(Problem(
                    rep.file, f"every training example is longer than max_seq_length {spec.training.max_seq_length}"
                    f" (the shortest has {min(lengths)} tokens): truncated, they leave little or nothing to learn;"
                    " raise max_seq_length", lines.get("training.max_seq_length"), "training.max_seq_length"))
            rep.notes.append(_describe_split(name, exs, lengths,
                                             spec.training.max_seq_length))
    _check_memory(rep, spec, home, lines, min(longest or spec.training.max_seq_length, spec.training.max_seq_length))
    if not splits.valid:
        rep.notes.append("no validation examples: training will run without eval")
    _note_leakage(rep, splits)


def _no_targets(rep: Report, spec: JobSpec, home: Home, lines: dict, pairs: list[tuple[int, int]]) -> bool:
    """A problem naming the training file when its examples, cut to max_seq_length, hold no target token."""
    data = home.resolve(spec.data)
    train_file = data / "train.jsonl" if data.is_dir() else data
    total = sum(target_count(n, o, spec.training.max_seq_length) for n, o in pairs)
    problem = no_targets_problem(train_file, total, spec.training.max_seq_length, spec.mask_prompt)
    if problem:
        rep.problems.append(Problem(rep.file, problem, lines.get("training.max_seq_length"), "training.max_seq_length"))
    return problem is not None


def _note_system(rep: Report, spec: JobSpec, splits: Splits) -> None:
    """Which system prompt generate, scoring, ask, serve and export put before each question."""
    shared, given = data_system(splits), spec.generate.system
    if given is not None:
        same = " (the same as the data's)" if given == shared else (
            ", not the data's shared one" if shared else "")
        rep.notes.append(f"system prompt: [generate].system{same}: {shorten(given or '(none)', 70)}")
    elif shared:
        rep.notes.append(f"system prompt: every chat example starts with the same one, used by generate, scoring,"
                         f" ask, serve and export ([generate].system overrides it): {shorten(shared, 70)}")


def _check_memory(rep: Report, spec: JobSpec, home: Home, lines: dict, longest: int) -> None:
    """With a budget: weights over it are a problem; one longest example over it (a rough estimate,
    even with gradient checkpointing) a warning. The worker measures the real figures."""
    budget = spec.memory.budget_gb * GIB
    model = home.resolve(spec.model)
    width = padded_width(longest, spec.training.max_seq_length)
    est = estimate(model, spec.lora.num_layers, spec.lora.rank, width) if budget and model.is_dir() else None
    if est is None:
        return
    if est.weights > budget:
        rep.problems.append(Problem(rep.file, f"the model's weights alone take {est.weights / GIB:.2f} GB, over the"
                                    f" budget of {spec.memory.budget_gb:g} GB", lines.get("memory.budget_gb"),
                                    "memory.budget_gb"))
        return
    one = est.peak(width * spec.memory.min_micro_batch, checkpointed=True)
    if one > budget * (1 - MARGIN):
        fits = int(max((budget * (1 - MARGIN) - est.base) / est.per_token_checkpointed, 0) // PAD_TO * PAD_TO)
        rep.notes.append(f"warning: memory.budget_gb {spec.memory.budget_gb:g} looks too small for the longest"
                         f" examples ({longest} tokens): by a rough estimate one needs about {one / GIB:.2f} GB even"
                         f" with gradient checkpointing; about {fits} tokens would fit. The worker measures the real"
                         f" figure before the first step and fails the job if it does not fit")
    elif est.peak(width * spec.training.batch_size, checkpointed=False) > budget * (1 - MARGIN):
        rep.notes.append(f"memory: the longest steps ({longest} tokens) will run in narrower micro-batches than"
                         f" {spec.training.batch_size} to stay within {spec.memory.budget_gb:g} GB (rough estimate)")


def _note_leakage(rep: Report, splits: Splits) -> None:
    train_answers = {e.answer.strip().casefold() for e in splits.train}
    leaked = [e for e in splits.valid if e.answer.strip().casefold() in train_answers]
    if leaked:
        exact = len([e for e in leaked if e.answer in {t.answer for t in splits.train}])
        distinct = len({e.answer.strip().casefold() for e in leaked})
        rep.notes.append(f"leakage: {len(leaked)} of {len(splits.valid)} validation examples ({exact} identical,"
                         f" {len(leaked) - exact} differing only in case or spaces; {distinct} distinct answers)"
                         f" have their answer in train too; validation loss will look better than it is")
    else:
        rep.notes.append("leakage: none (no validation answer appears in train)")


def _check_experiments(rep: Report, spec: JobSpec, home: Home, lines: dict, path: Path, check_paths: bool) -> None:
    """[sweep]: every key and value it can choose; [init]: adapters that exist and fit (one rule, lineage.py)."""
    from farensed.core import lineage, sweep_params

    found = []
    if spec.sweep is not None:
        found += sweep_params.problems(tomllib.loads(path.read_text(encoding="utf-8")), spec.sweep)
        if spec.output:
            found.append(("output", "a sweep's trials each get their own folder (checkpoints/<trial id>): leave"
                          " output out"))
    if check_paths:
        found += lineage.problems(spec, home)
    for key, msg in found:
        line = lines.get(key) or lines.get(key.rsplit(".", 1)[0]) or lines.get(key.split(".")[0])
        rep.problems.append(Problem(rep.file, msg, line, key))


def check_job(path: str | Path, home: Home, check_paths: bool = True, allow_remote_code: bool = False,
              job_id: str | None = None, measure_tokens: bool = True,
              other_outputs: dict[str, str] | None = None) -> Report:
    """Validate one job file completely; never raises, whatever the file holds (problems are returned).
    measure_tokens=False skips the tokenizer (token-length notes only; problems are the same).
    other_outputs: the output folders of the jobs already recorded (default: read from the spool)."""
    path = Path(path)
    rep = Report(str(path))
    try:
        return _check_job(rep, path, home, check_paths, allow_remote_code, job_id, measure_tokens, other_outputs)
    except Exception as e:  # noqa: BLE001 - a check that fails on hostile input is a problem, never a jam
        rep.problems.append(Problem(str(path), f"could not be checked: {type(e).__name__}: {str(e)[:300]}"))
        return rep


def _check_job(rep: Report, path: Path, home: Home, check_paths: bool, allow_remote_code: bool,
               job_id: str | None, measure_tokens: bool, other_outputs: dict[str, str] | None) -> Report:
    try:
        rep.spec = spec = load_job(path)
    except JobFileError as e:
        rep.problems = list(e.problems)
        return rep
    lines = key_lines(path.read_text(encoding="utf-8"))
    for key, meaning in spec.evaluate.retired.items():  # an older file runs, mapped; said where
        line = lines.get(f"evaluate.{key}")
        rep.notes.append(f"warning: {rep.file}{f':{line}' if line else ''}: evaluate.{meaning}")
    if spec.trust_remote_code and not allow_remote_code:
        rep.problems.append(Problem(rep.file, "trust_remote_code runs code from the model folder; the daemon"
                                    " does not allow it (farensed run --allow-remote-code)",
                                    lines.get("trust_remote_code"), "trust_remote_code"))
    _check_experiments(rep, spec, home, lines, path, check_paths)
    if check_paths:
        others = recorded_outputs(home) if other_outputs is None else other_outputs
        _check_paths(rep, spec, home, lines, job_id or path.stem, others)
        _check_extras(rep, spec, lines)
        if spec.distributed is not None:
            _check_distributed(rep, spec, home, lines)
        if home.resolve(spec.data).exists():
            _check_data(rep, spec, home, lines, measure_tokens)
    return rep
