"""Build the tiny demo model (a llama pre-trained on data/'s texts, own BPE) and its 4-bit twin.

    python -m farensed.demo.model [--home DIR] [--if-missing] [--force]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from farensed.core.atomic import fsync_dir, fsync_file
from farensed.core.paths import REPO_ROOT, Home
from farensed.demo.model.pretrain import (
    LORA_INPUT_DIVISOR,
    PRETRAIN,
    SEED,
    Pretraining,
    pretrain,
    pretrain_texts,
    scale_lora_inputs,
)

DEMO_MODEL = "models/farense-tiny"
DEMO_MODEL_4BIT = "models/farense-tiny-4bit"

VOCAB_TARGET = 1536  # a ceiling: the sample data saturates BPE near 1050 tokens
PAD, IM_START, IM_END = "<pad>", "<|im_start|>", "<|im_end|>"
# ChatML; the generation prompt is a token prefix of the full chat, which mask_prompt needs.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
ARCH = {
    "model_type": "llama",
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 128,  # a multiple of 64 so 4-bit group-size-64 quantization applies
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "max_position_embeddings": 2048,
    "tie_word_embeddings": False,
}
# A short full fine-tune on the sample's plain texts (see pretrain_texts), so LoRA starts
# from a model that knows the words and facts and only has to learn the chat format.
def chat_texts(data_dir: Path) -> list[str]:
    """Every message content of train.jsonl and valid.jsonl, in file order."""
    texts = []
    for name in ("train.jsonl", "valid.jsonl"):
        with open(data_dir / name, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    texts.extend(m["content"] for m in json.loads(line)["messages"])
    return texts


def train_tokenizer(texts: list[str]):
    """A byte-level BPE over the texts; the role names are added so they get whole tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()  # mlx-lm picks its BPE streaming detokenizer from this
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_TARGET,
        min_frequency=1,
        special_tokens=[PAD, IM_START, IM_END],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts + ["system", "user", "assistant"], trainer=trainer)
    return tok


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")


def write_tokenizer(tok, dest: Path) -> int:
    """tokenizer.json plus the transformers side files; returns the eos id."""
    tok.save(str(dest / "tokenizer.json"))
    _write_json(dest / "tokenizer_config.json", {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "eos_token": IM_END,
        "pad_token": PAD,
        "bos_token": None,
        "unk_token": None,
        "chat_template": CHAT_TEMPLATE,
        "model_max_length": ARCH["max_position_embeddings"],
        "clean_up_tokenization_spaces": False,
    })
    _write_json(dest / "special_tokens_map.json", {"eos_token": IM_END, "pad_token": PAD})
    return tok.token_to_id(IM_END)


def random_model(config: dict):
    """The llama of `config` with seeded random weights (mlx draws them at construction)."""
    import mlx.core as mx
    from mlx_lm.models import llama

    mx.random.seed(SEED)
    model = llama.Model(llama.ModelArgs.from_dict(config))
    mx.eval(model.parameters())
    return model


@contextlib.contextmanager
def _staging(dest: Path) -> Iterator[Path]:
    """A fresh temp path beside `dest`, renamed onto `dest` only once fully written."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.building-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        yield tmp
        _install(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _install(tmp: Path, dest: Path) -> None:
    """Flush `tmp`, then swap it in; the old model (if any) is moved aside, not overwritten."""
    for f in sorted(tmp.iterdir()):
        fsync_file(f)
    fsync_dir(tmp)
    old = dest.parent / f".{dest.name}.old-{os.getpid()}"
    if dest.exists():
        os.rename(dest, old)
    os.rename(tmp, dest)
    fsync_dir(dest.parent)
    shutil.rmtree(old, ignore_errors=True)


def build(dest: Path, data_dir: Path) -> Pretraining:
    """Build the float model into `dest` from the chat data in `data_dir`; byte-identical each time.

    A seeded random llama is pre-trained on the data's plain texts, each followed by eos,
    then rescaled (exactly) for gentler LoRA updates; see PRETRAIN and LORA_INPUT_DIVISOR.
    """
    import mlx.core as mx
    from mlx_lm.utils import save_config, save_model

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    data_dir = Path(data_dir)
    tok = train_tokenizer(chat_texts(data_dir))
    dest = Path(dest)
    with _staging(dest) as tmp:
        tmp.mkdir()
        eos = write_tokenizer(tok, tmp)
        config = dict(ARCH, vocab_size=tok.get_vocab_size(), eos_token_id=eos)
        model = random_model(config)
        answers, questions = ([enc.ids + [eos] for enc in tok.encode_batch(texts)]
                              for texts in pretrain_texts(data_dir))
        report = pretrain(model, answers, questions, **PRETRAIN)
        scale_lora_inputs(model, LORA_INPUT_DIVISOR)
        mx.eval(model.parameters())
        save_model(tmp, model)
        save_config(config, config_path=tmp / "config.json")
        _write_json(tmp / "generation_config.json", {"eos_token_id": eos})
    return report


def build_quantized(src: Path, dest: Path) -> Path:
    """The 4-bit (group 64) variant of `src`, made by mlx-lm's own convert."""
    from mlx_lm import convert

    dest = Path(dest)
    with _staging(dest) as tmp:
        with contextlib.redirect_stdout(io.StringIO()):  # convert chatters on stdout
            # convert refuses an existing folder, so it gets the not-yet-created temp path.
            convert(hf_path=str(src), mlx_path=str(tmp), quantize=True, q_bits=4, q_group_size=64)
        _copy_tokenizer(Path(src), tmp)
    return dest


def _copy_tokenizer(src: Path, dest: Path) -> None:
    """Give `dest` the very tokenizer files of `src`.

    convert re-saves the tokenizer in the installed transformers' own layout (v5 writes a
    TokenizersBackend class and a separate chat_template.jinja); the source's files load
    in every transformers version and keep both models' tokenizers byte-identical.
    """
    (dest / "chat_template.jinja").unlink(missing_ok=True)
    for name in TOKENIZER_FILES:
        shutil.copyfile(src / name, dest / name)


def loads(path: Path) -> bool:
    """Whether mlx-lm can load the model at `path`."""
    if not (path / "config.json").is_file():
        return False
    try:
        from mlx_lm import load

        load(str(path))
        return True
    except Exception:  # any failure means "rebuild it"
        return False


def params_count(path: Path) -> int:
    index = json.loads((path / "model.safetensors.index.json").read_text())
    return index["metadata"]["total_parameters"]


def _data_dir(home: Home) -> Path:
    """The home's data folder, or the repository's sample when a fresh home has none."""
    if (home.data / "train.jsonl").is_file():
        return home.data
    return REPO_ROOT / "data"


def ensure(home: Home, force: bool = False) -> tuple[list[Path], Pretraining | None]:
    """Build whichever model is missing or unloadable (both with `force`); return those built,
    and the float model's pre-training when it was built."""
    base, quant = home.root / DEMO_MODEL, home.root / DEMO_MODEL_4BIT
    built, pretraining = [], None
    if force or not loads(base):
        pretraining = build(base, _data_dir(home))
        built.append(base)
    if force or built or not loads(quant):
        built.append(build_quantized(base, quant))
    return built, pretraining


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m farensed.demo.model", description=__doc__.splitlines()[0])
    p.add_argument("--home", help="farensed home (default: $FARENSED_HOME or the repository)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--if-missing", action="store_true", help="do nothing when both models exist and load")
    mode.add_argument("--force", action="store_true", help="rebuild both even if they exist")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    home = Home.from_option(args.home)
    base, quant = home.root / DEMO_MODEL, home.root / DEMO_MODEL_4BIT
    if not (args.if_missing or args.force) and (base.exists() or quant.exists()):
        print(f"{base.parent} already holds a demo model; pass --if-missing or --force", file=sys.stderr)
        return 1
    start = time.monotonic()
    built, pretraining = ensure(home, force=args.force)
    if not built:
        print(f"demo models present: {base}, {quant}")
        return 0
    names = ", ".join(str(p) for p in built)
    done = f"; {pretraining}" if pretraining else ""
    print(f"built {names} ({params_count(base):,} params{done}) in {time.monotonic() - start:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
