"""`python -m farensed.worker.infer --model M [--adapter-path A] PROMPT...`: answer prompts with mlx-lm.

Streams tokens to stdout (or prints JSON lines with --json). Started by `farensectl ask` and
`compare`, so the client never imports mlx. Exit EXIT_OOM_EXHAUSTED when memory is too tight.
"""

from __future__ import annotations

import argparse
import json
import sys

from farensed.worker.entry import run_mlx_command


def parse(argv):
    ap = argparse.ArgumentParser(prog="python -m farensed.worker.infer", description=__doc__)
    ap.add_argument("prompts", nargs="+", help="user messages, answered one by one")
    ap.add_argument("--model", required=True, help="base model folder or hub id")
    ap.add_argument("--adapter-path", help="adapter folder (adapters.safetensors + adapter_config.json)")
    ap.add_argument("--system", help="system message before each prompt (the job's generate.system)")
    ap.add_argument("--max-tokens", type=int, default=200)
    ap.add_argument("--temp", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="one JSON line {prompt, answer} per prompt")
    ap.add_argument("--trust-remote-code", action="store_true")
    return ap.parse_args(argv)


def chat_prompt(tokenizer, prompt: str, system: str | None = None) -> str:
    """The user message (after the system one, if any) through the model's chat template; the
    worker's end-of-run answers use this too."""
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def stream_answer(model, tokenizer, prompt: str, args, out) -> str:
    """Generate one answer, writing each piece to `out` as it comes (when `out` is given)."""
    from mlx_lm import stream_generate
    from mlx_lm.sample_utils import make_sampler

    pieces = []
    prompt_text = chat_prompt(tokenizer, prompt, args.system)
    for resp in stream_generate(model, tokenizer, prompt_text, max_tokens=args.max_tokens,
                                sampler=make_sampler(temp=args.temp)):
        pieces.append(resp.text)
        if out is not None:
            out.write(resp.text)
            out.flush()
    return "".join(pieces).strip()


def answer_all(args, out=sys.stdout) -> None:
    import mlx.core as mx
    from mlx_lm import load

    mx.random.seed(args.seed)
    model, tokenizer = load(args.model, adapter_path=args.adapter_path, trust_remote_code=args.trust_remote_code)
    for prompt in args.prompts:
        if args.json:
            text = stream_answer(model, tokenizer, prompt, args, None)
            out.write(json.dumps({"prompt": prompt, "answer": text}, ensure_ascii=False) + "\n")
            out.flush()
        else:
            stream_answer(model, tokenizer, prompt, args, out)
            out.write("\n")
            out.flush()


def main(argv=None) -> int:
    return run_mlx_command(answer_all, parse(argv), "inference")


if __name__ == "__main__":
    sys.exit(main())
