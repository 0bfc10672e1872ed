"""`did you mean ...?` for a mistyped verb, job id or key (difflib; no imports beyond it)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: str, known: Iterable[str], n: int = 3) -> str:
    """`; did you mean a, b?` (the closest of `known`), or "" when none is close."""
    close = difflib.get_close_matches(word, list(known), n=n, cutoff=0.6)
    return f"; did you mean {', '.join(close)}?" if close else ""
