"""Split a reply into pieces that fit WeCom's byte limits (text via ``message/send``: 2048 bytes UTF-8).

Pieces break at line ends; a line that alone exceeds the budget is broken at sentence ends (。；！？), and only
a sentence longer than a whole piece is cut, on a character boundary. Citation lines (〔…〕) are never cut.
With more than one piece, each carries a position tag such as ``（2/3）`` so the reader sees the order.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["APP_TEXT_LIMIT", "BOT_STREAM_LIMIT", "split_message", "truncate_bytes", "utf8_len"]

APP_TEXT_LIMIT = 2048
"""Bytes of ``text.content`` accepted by ``message/send`` (longer text is truncated by WeCom)."""

BOT_STREAM_LIMIT = 20480
"""Bytes of ``stream.content`` accepted in an AI-bot reply."""

_TAG_RESERVE = len("（999/999）\n".encode())
_SENTENCE_END = re.compile(r"(?<=[。；！？!?;])")
_CITATION_LINE = re.compile(r"^\s*(\[\d+\])?〔.*〕\s*$")


def utf8_len(text: str) -> int:
    """Length of ``text`` in UTF-8 bytes."""
    return len(text.encode("utf-8"))


def truncate_bytes(text: str, limit: int) -> str:
    """The longest prefix of ``text`` that fits in ``limit`` UTF-8 bytes (never splits a character)."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", errors="ignore")


def _atoms(text: str, budget: int) -> list[str]:
    """Indivisible units, each ≤ ``budget`` bytes, whose concatenation is ``text``."""
    atoms: list[str] = []
    for line in text.splitlines(keepends=True):
        if utf8_len(line) <= budget:
            atoms.append(line)
            continue
        if _CITATION_LINE.match(line):
            # A citation line longer than a whole message cannot be kept intact; shorten it rather than cut it.
            atoms.append(truncate_bytes(line.rstrip("\n"), budget - 4) + "…〕\n")
            continue
        for sentence in (s for s in _SENTENCE_END.split(line) if s):
            while utf8_len(sentence) > budget:
                head = truncate_bytes(sentence, budget)
                atoms.append(head)
                sentence = sentence[len(head) :]
            if sentence:
                atoms.append(sentence)
    return atoms


def split_message(
    text: str,
    *,
    limit: int = APP_TEXT_LIMIT,
    max_pieces: int | None = None,
    footer: Callable[[str], str] | None = None,
) -> list[str]:
    """Split ``text`` into ordered pieces of at most ``limit`` UTF-8 bytes each.

    Args:
        text: The full reply (without its footer).
        limit: Byte limit per piece, position tag and footer included.
        max_pieces: Keep at most this many pieces; the last kept piece then ends with a note that the reply
            was shortened.
        footer: Called with each piece's text, returns what to append to it (e.g. the sources of the
            citation markers the piece contains), so every message stands on its own.

    Returns:
        The pieces; a single piece has no position tag (the text fit, or ``max_pieces`` is 1).
    """
    if limit <= _TAG_RESERVE + 256:
        raise ValueError(f"limit {limit} is too small to split into tagged pieces")
    add_footer = footer or (lambda _text: "")
    text = text.strip("\n")
    if utf8_len(text + add_footer(text)) <= limit:
        return [text + add_footer(text)]
    budget = limit - _TAG_RESERVE

    def size(atoms: list[str], extra: str = "") -> int:
        body = "".join(atoms).strip("\n") + extra
        return utf8_len(body) + utf8_len(add_footer(body))

    # Leave room for a footer beside even the longest line.
    atom_budget = budget // 2 if footer else budget
    groups: list[list[str]] = [[]]
    for atom in _atoms(text, atom_budget):
        if groups[-1] and size([*groups[-1], atom]) > budget:
            groups.append([])
        groups[-1].append(atom)
    if max_pieces is not None and len(groups) > max_pieces:
        note = f"\n……（内容较长，仅发送前 {max_pieces} 段；请把问题问得更具体些）"
        groups = groups[:max_pieces]
        last = groups[-1]
        # Drop whole lines from the end rather than cutting one, so no citation is left half-shown.
        while len(last) > 1 and size(last, note) > budget:
            last.pop()
        groups[-1] = [*last, note]
    pieces = []
    for group in groups:
        body = "".join(group).strip("\n")
        piece = body + add_footer(body)
        if utf8_len(piece) > budget:  # pragma: no cover - a single line citing very many sources
            piece = truncate_bytes(piece, budget)
        pieces.append(piece)
    if len(pieces) == 1:
        return pieces
    return [f"（{i}/{len(pieces)}）\n{piece}" for i, piece in enumerate(pieces, 1)]
