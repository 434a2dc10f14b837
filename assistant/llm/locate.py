"""Finding a quoted span in a passage: verbatim up to whitespace, or (for correction) nearly verbatim."""

from __future__ import annotations

import re
from difflib import SequenceMatcher

# An ellipsis inside a quote joins verbatim fragments that appear in this order in the passage.
ELLIPSIS = re.compile(r"…+|\.{3,}|⋯+")
# Sentence punctuation at the edges of a quote is not part of the claim (models end quotes with 。 when
# the source has ；); it is dropped before locating and restored only when the source has it too.
EDGE_PUNCT = "，。；：、！？,.;:!?"
CLAUSE_END = "，。；：！？!?;\n \u3000"  # spaces too: they separate an article's number from its text
MIN_FUZZY_CHARS = 8
FUZZY_RATIO = 0.85


def squeeze(text: str) -> tuple[str, list[int]]:
    """``text`` without whitespace, and for each kept character its index in ``text``."""
    index = [i for i, ch in enumerate(text) if not ch.isspace()]
    return "".join(text[i] for i in index), index


def locate(passage: str, quote: str) -> list[tuple[int, int]] | None:
    """Spans of ``passage`` that make up ``quote`` (one per ellipsis-separated fragment), or None.

    Whitespace is ignored on both sides; the spans point at the exact source text.
    """
    core = quote.strip().strip(EDGE_PUNCT + "…⋯").strip()
    fragments = [squeeze(f)[0] for f in ELLIPSIS.split(core)]
    fragments = [f for f in fragments if f]
    if not fragments:
        return None
    flat, index = squeeze(passage)
    spans: list[tuple[int, int]] = []
    pos = 0
    for fragment in fragments:
        found = flat.find(fragment, pos)
        if found < 0:
            return None
        pos = found + len(fragment)
        spans.append((index[found], index[pos - 1] + 1))
    last_start, last_end = spans[-1]
    tail = quote.rstrip()[-1:]
    if tail and tail in EDGE_PUNCT and passage[last_end : last_end + 1] == tail:
        spans[-1] = (last_start, last_end + 1)
    return spans


def exact_text(passage: str, spans: list[tuple[int, int]]) -> str:
    """The source text of located spans, fragments joined by an ellipsis as the model wrote them."""
    return "……".join(passage[s:e] for s, e in spans)


def nearest_span(passage: str, quote: str) -> tuple[int, int] | None:
    """The run of whole clauses of ``passage`` most like ``quote``, if it is nearly verbatim."""
    target = squeeze(quote.strip(EDGE_PUNCT))[0]
    if len(target) < MIN_FUZZY_CHARS:
        return None
    bounds = [0] + [i + 1 for i, ch in enumerate(passage) if ch in CLAUSE_END]
    if bounds[-1] != len(passage):
        bounds.append(len(passage))
    best: tuple[float, tuple[int, int]] | None = None
    for i, start in enumerate(bounds[:-1]):
        for end in bounds[i + 1 : i + 8]:
            candidate = squeeze(passage[start:end].strip(EDGE_PUNCT + " \n"))[0]
            if not 0.7 * len(target) <= len(candidate) <= 1.4 * len(target):
                continue
            ratio = SequenceMatcher(None, target, candidate, autojunk=False).ratio()
            if ratio >= FUZZY_RATIO and (best is None or ratio > best[0]):
                best = (ratio, _trim(passage, start, end))
    return best[1] if best else None


def _trim(passage: str, start: int, end: int) -> tuple[int, int]:
    while start < end and passage[start].isspace():
        start += 1
    while end > start and (passage[end - 1].isspace() or passage[end - 1] in EDGE_PUNCT):
        end -= 1
    return start, end
