"""Text -> sparse features for the intent model: word 1-2-grams and character 3-5-grams.

Character n-grams make the model robust to the typos and inflections practices type
("eligable", "certifcation", "expiring"); word bigrams keep short phrases ("too late",
"on its own") that single words miss. Numbers are folded to one token, so "81%" and "77%"
teach the same thing: a score was stated."""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache

_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?|\d+(?:[.,]\d+)?%?|[?%$]")
CHAR_SIZES = (3, 4, 5)


def tokens(text: str) -> list[str]:
    out = []
    for tok in _TOKEN.findall(text):
        if tok[0].isdigit():
            out.append("<pct>" if tok.endswith("%") else "<num>")
        else:
            out.append(tok)
    return out


@lru_cache(maxsize=4)  # a few texts of one message: never a hit across the messages of a stream
def term_counts(text: str) -> Counter[str]:
    """Raw counts of every feature in a normalized text. Remembered for a few texts: the intent,
    statement and condition models each read the same message, and callers only read the counts."""
    toks = tokens(text)
    counts: Counter[str] = Counter()
    counts.update(f"w:{t}" for t in toks)
    counts.update(f"b:{a} {b}" for a, b in zip(toks, toks[1:]))
    for tok in toks:
        if tok.startswith("<") or len(tok) < 2:
            continue
        padded = f" {tok} "
        for n in CHAR_SIZES:
            counts.update(f"c:{padded[i:i + n]}" for i in range(len(padded) - n + 1))
    return counts
