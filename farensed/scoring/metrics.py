"""Answer scores (pure, no mlx): SQuAD-style normalized exact match and token F1 for Portuguese
text, and their means per model (base, best, final adapters).

Normalization, as SQuAD's and MLQA's: lowercase, punctuation to spaces, articles dropped,
whitespace collapsed. For Portuguese the articles are o/a/os/as/um/uma/uns/umas, and accents
are stripped so that a reference typed without them ("Estadio de Sao Luis") still matches;
the few words told apart only by an accent (é/e, à/a) rarely decide a match.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable

ARTICLES = frozenset({"o", "a", "os", "as", "um", "uma", "uns", "umas", "the", "an"})


def _plain(ch: str) -> str:
    """Punctuation and symbols (all Unicode P* and S*: «», –, ., º stays a letter) become spaces."""
    return " " if unicodedata.category(ch)[0] in "PS" else ch


def normalize(text: str) -> str:
    """Casefolded, accents and punctuation stripped, articles dropped, single spaces."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    letters = "".join(_plain(ch) for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(w for w in letters.split() if w not in ARTICLES)


def exact_match(answer: str, reference: str) -> float:
    return float(normalize(answer) == normalize(reference))


def f1(answer: str, reference: str) -> float:
    """Token F1 of the normalized texts (two empty texts match; one empty scores 0)."""
    got, want = normalize(answer).split(), normalize(reference).split()
    if not got or not want:
        return float(got == want)
    common = sum((Counter(got) & Counter(want)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(got), common / len(want)
    return 2 * precision * recall / (precision + recall)


def mean(values: Iterable[float]) -> float | None:
    vals = list(values)
    return sum(vals) / len(vals) if vals else None
