"""An Ollama Modelfile for an exported GGUF (pure, no mlx): FROM, a Go TEMPLATE derived from the
model's own Jinja chat template, SYSTEM, and PARAMETER temperature / num_predict / stop.

The Go template is derived by rendering the Jinja template on marked messages (the worker passes
the tokenizer's apply_chat_template as `render`) and is checked by rendering the same
conversations back from the derived pieces: per-message templates (ChatML, Llama 3, ...) become a
`.Messages` loop; others (system folded into the first user turn, as Mistral's) a single-turn
`.System`/`.Prompt` template, checked the same way."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from farensed.core.errors import FarensedError

Render = Callable[[list[dict], bool], str]  # (messages, add_generation_prompt) -> text
S, U, A, U2, A2 = "\ue000S\ue000", "\ue000U\ue000", "\ue000A\ue000", "\ue000V\ue000", "\ue000B\ue000"


def _m(role: str, content: str) -> dict:
    return {"role": role, "content": content}


@dataclass(frozen=True)
class Turns:
    """The text around each role's content, and the assistant's opening (the generation prompt)."""

    prefix: dict[str, str]
    suffix: dict[str, str]
    generation: str

    def render(self, messages: list[dict]) -> str:
        body = "".join(self.prefix[m["role"]] + m["content"] + self.suffix[m["role"]] for m in messages)
        return body + self.generation


def _cut(text: str, *marks: str) -> list[str]:
    """`text` split at each mark in turn (FarensedError if one is missing)."""
    parts = []
    for mark in marks:
        head, found, text = text.partition(mark)
        if not found:
            raise ValueError(mark)
        parts.append(head)
    return parts + [text]


def _turns(render: Render, bos: str) -> Turns:
    strip = lambda t: t[len(bos):] if bos and t.startswith(bos) else t  # noqa: E731 - the runtime adds BOS
    u0, u_suf = _cut(strip(render([_m("user", U)], False)), U)
    generation = strip(render([_m("user", U)], True))[len(u0 + U + u_suf):]
    a_mid, a_suf = _cut(strip(render([_m("user", U), _m("assistant", A)], False)), U, A)[1:]
    s0, s_mid, _ = _cut(strip(render([_m("system", S), _m("user", U)], False)), S, U)
    if not (a_mid.startswith(u_suf) and a_mid[len(u_suf):] == generation and s_mid.endswith(u0)):
        raise ValueError("not one block per message")
    return Turns({"system": s0, "user": u0, "assistant": generation},
                 {"system": s_mid[: len(s_mid) - len(u0)], "user": u_suf, "assistant": a_suf}, generation)


CHECKS = ([_m("system", S), _m("user", U), _m("assistant", A), _m("user", U2)],
          [_m("user", U), _m("assistant", A), _m("user", U2), _m("assistant", A2), _m("user", U)], [_m("user", U)])


def go_text(text: str) -> str:
    """Literal text inside a Go template ("{{" would open an action)."""
    return text.replace("{{", '{{ "{{" }}')


def messages_template(t: Turns) -> str:
    roles = [f'{{{{ {"if" if i == 0 else "else if"} eq .Role "{r}" }}}}{go_text(t.prefix[r])}{{{{ .Content }}}}'
             f'{go_text(t.suffix[r])}' for i, r in enumerate(("system", "user", "assistant"))]
    return "{{ range .Messages }}" + "".join(roles) + "{{ end }}{{ end }}" + go_text(t.generation)


def _single_turn(render: Render, bos: str) -> str:
    strip = lambda t: t[len(bos):] if bos and t.startswith(bos) else t  # noqa: E731
    a0, a1, a2 = _cut(strip(render([_m("system", S), _m("user", U)], True)), S, U)
    b0, b2 = _cut(strip(render([_m("user", U)], True)), U)
    return (f"{{{{ if .System }}}}{go_text(a0)}{{{{ .System }}}}{go_text(a1)}{{{{ else }}}}{go_text(b0)}{{{{ end }}}}"
            f"{{{{ .Prompt }}}}{{{{ if .System }}}}{go_text(a2)}{{{{ else }}}}{go_text(b2)}{{{{ end }}}}")


def go_template(render: Render, bos: str = "") -> tuple[str, str]:
    """(Ollama TEMPLATE, "messages" or "single-turn") equivalent to the Jinja template `render` applies."""
    try:
        turns = _turns(render, bos)
        strip = lambda t: t[len(bos):] if bos and t.startswith(bos) else t  # noqa: E731
        if all(turns.render(c) == strip(render(c, True)) for c in CHECKS):
            return messages_template(turns), "messages"
    except (ValueError, KeyError):
        pass
    try:
        return _single_turn(render, bos), "single-turn"
    except ValueError:
        raise FarensedError("the model's chat template could not be turned into an Ollama TEMPLATE") from None


def stops(render: Render, eos: str | None) -> list[str]:
    """Where an answer ends: the end-of-turn text after the assistant's content, and the EOS token."""
    end = _cut(render([_m("user", U), _m("assistant", A)], False), A)[1].strip()
    return [s for s in dict.fromkeys([end, eos or ""]) if s]


def quoted(text: str, what: str) -> str:
    """A Modelfile value in triple quotes (it cannot hold three quotes in a row or end with one)."""
    if '"""' in text or text.endswith('"'):
        raise FarensedError(f'the {what} contains """ or ends with ": it cannot go into a Modelfile')
    return f'"""{text}"""'


def render_modelfile(gguf_name: str, template: str, system: str | None, temperature: float,
                     max_tokens: int, stop: list[str]) -> str:
    """The Modelfile text, FROM the GGUF beside it."""
    if not re.fullmatch(r"[\w.-]+\.gguf", gguf_name):
        raise FarensedError(f"{gguf_name!r}: not a plain .gguf file name")
    lines = [f"FROM ./{gguf_name}", f"TEMPLATE {quoted(template, 'chat template')}"]
    if system:
        lines.append(f"SYSTEM {quoted(system, 'system prompt')}")
    lines += [f"PARAMETER temperature {temperature:g}", f"PARAMETER num_predict {max_tokens}"]
    lines += [f"PARAMETER stop {quoted(s, 'stop text')}" for s in stop]
    return "\n".join(lines) + "\n"


def ollama_name(job_name: str) -> str:
    """A model name `ollama create` accepts, from the job's name."""
    name = re.sub(r"[^a-z0-9._-]+", "-", job_name.lower()).strip("-._")
    return name or "farensed-model"
