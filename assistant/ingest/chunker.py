"""Turn parsed units into chunks: one per article or smallest headed unit, long ones split, tiny ones merged."""

from __future__ import annotations

import hashlib

from assistant.ingest.parser import Structure
from assistant.text import sentence_spans
from assistant.types import Chunk, SourceDoc, Unit

MAX_CHARS = 900  # longer units are split at sentence boundaries ...
TARGET_CHARS = 500  # ... into pieces of about this size
MIN_CHARS = 40  # non-article units shorter than this join their neighbour


def section_label(path: tuple[str, ...]) -> str:
    return " > ".join(path) if path else "（文首）"


def make_chunk_id(doc_id: str, section: str, text: str) -> str:
    digest = hashlib.sha1(f"{doc_id}\x1f{section}\x1f{text}".encode()).hexdigest()
    return digest[:20]


def split_into_chunks(doc: SourceDoc, structure: Structure) -> list[Chunk]:
    units = _merge_tiny(structure.units, doc.text)
    chunks: list[Chunk] = []
    for unit in units:
        section = section_label(unit.path)
        for start, end in _split_long(doc.text, unit.start, unit.end):
            text = doc.text[start:end]
            chunks.append(
                Chunk(
                    chunk_id=make_chunk_id(doc.doc_id, section, f"{start}:{text}"),
                    doc_id=doc.doc_id,
                    doc_title=doc.meta.title,
                    source=doc.source,
                    section=section,
                    text=text,
                    start=start,
                    end=end,
                    kind=unit.kind,
                    ordinal=len(chunks),
                    doc_kind=doc.meta.kind,
                )
            )
    return chunks


def _merge_tiny(units: list[Unit], text: str) -> list[Unit]:
    merged: list[Unit] = []
    for unit in units:
        prev = merged[-1] if merged else None
        tiny = unit.kind != "article" and len(text[unit.start : unit.end].strip()) < MIN_CHARS
        if (
            prev is not None
            and prev.kind != "article"
            and prev.top == unit.top
            and (tiny or len(text[prev.start : prev.end].strip()) < MIN_CHARS)
            and _related(prev.path, unit.path)
        ):
            merged[-1] = Unit(_common_path(prev.path, unit.path), prev.start, unit.end, prev.kind, prev.top)
        else:
            merged.append(unit)
    return merged


def _related(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Siblings, or one nested directly in the other's parent line: never across divisions."""
    return a[:-1] == b[:-1] or b[: len(a)] == a or a[: len(b)] == b


def _common_path(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    if b[: len(a)] == a:
        return a
    if a[: len(b)] == b:
        return b
    return a[:-1]


def _split_long(text: str, start: int, end: int) -> list[tuple[int, int]]:
    if end - start <= MAX_CHARS:
        return [(start, end)]
    pieces: list[tuple[int, int]] = []
    piece_start = start
    piece_end = start
    for _, s_end in sentence_spans(text, start, end):
        if s_end - piece_start > TARGET_CHARS and piece_end > piece_start:
            pieces.append((piece_start, piece_end))
            piece_start = _skip_space(text, piece_end, end)
        piece_end = s_end
    if piece_end > piece_start:
        pieces.append((piece_start, piece_end))
    return pieces


def _skip_space(text: str, pos: int, end: int) -> int:
    while pos < end and text[pos].isspace():
        pos += 1
    return pos
