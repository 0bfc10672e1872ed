"""`python -m farensed.worker.infer --model M [--adapter-path A] PROMPT... [--messages FILE]`: answer
prompts with mlx-lm.

One prompt streams its tokens to stdout; several (or --json) are decoded together in batches
(worker.answering) and printed in order, as text or JSON lines. Started by `farensectl ask` and
`compare`, so the client never imports mlx. Exit EXIT_OOM_EXHAUSTED when memory is too tight.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from farensed.worker.entry import run_mlx_command


def parse(argv):
    ap = argparse.ArgumentParser(prog="python -m farensed.worker.infer", description=__doc__)
    ap.add_argument("prompts", nargs="*", help="user messages")
    ap.add_argument("--messages", type=Path, help='a JSONL file of chats ({"messages": [...]}), answered after'
                    " the prompts (farensectl ask -n: the job's held-out questions)")
    ap.add_argument("--model", required=True, help="base model folder or hub id")
    ap.add_argument("--adapter-path", help="adapter folder (adapters.safetensors + adapter_config.json)")
    ap.add_argument("--system", help="system message before each prompt (the job's generate.system)")
    ap.add_argument("--max-tokens", type=int, default=200)
    ap.add_argument("--temp", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="one JSON line {prompt, answer} per prompt")
    ap.add_argument("--trust-remote-code", action="store_true")
    return ap.parse_args(argv)


def chat_messages(prompt: str, system: str | None = None) -> list[dict]:
    """The user message after the system one, if any; the worker's end-of-run answers use this too."""
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]


def stream_answer(model, tokenizer, messages: list[dict], args, out) -> str:
    """Generate one answer, writing each piece to `out` as it comes (when `out` is given)."""
    from mlx_lm import stream_generate
    from mlx_lm.sample_utils import make_sampler

    pieces = []
    prompt_text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    for resp in stream_generate(model, tokenizer, prompt_text, max_tokens=args.max_tokens,
                                sampler=make_sampler(temp=args.temp)):
        pieces.append(resp.text)
        if out is not None:
            out.write(resp.text)
            out.flush()
    return "".join(pieces).strip()


def chats(args) -> list[tuple[str, list[dict]]]:
    """(shown prompt, messages) for every prompt, then every chat of --messages."""
    out = [(p, chat_messages(p, args.system)) for p in args.prompts]
    if args.messages is not None:
        for line in args.messages.read_text(encoding="utf-8").splitlines():
            messages = json.loads(line)["messages"]
            out.append((next((m["content"] for m in reversed(messages) if m["role"] == "user"), ""), messages))
    return out


def answer_all(args, out=sys.stdout) -> None:
    import mlx.core as mx
    from mlx_lm import load
    from mlx_lm.sample_utils import make_sampler

    from farensed.worker.answering import batched, prompt_ids

    mx.random.seed(args.seed)
    model, tokenizer = load(args.model, adapter_path=args.adapter_path, trust_remote_code=args.trust_remote_code)
    asked = chats(args)
    if len(asked) == 1 and not args.json:
        stream_answer(model, tokenizer, asked[0][1], args, out)
        out.write("\n")
        return
    ids = [prompt_ids(tokenizer, messages) for _, messages in asked]
    texts = batched(model, tokenizer, ids, [args.max_tokens] * len(ids), make_sampler(temp=args.temp))
    for (prompt, _), text in zip(asked, texts):
        out.write(json.dumps({"prompt": prompt, "answer": text}, ensure_ascii=False) if args.json else text)
        out.write("\n")
    out.flush()


def main(argv=None) -> int:
    return run_mlx_command(answer_all, parse(argv), "inference")


if __name__ == "__main__":
    sys.exit(main())
