"""The two attributes that citation checks read from a knowledge base, for tests of those checks alone.

``cite()`` and the LLM verifier only look up document text by id and chunks by id; property tests run them
thousands of times, where building a real knowledge base per example would dominate the run.
"""

from __future__ import annotations

from types import SimpleNamespace

from assistant.types import Chunk


def citation_kb(chunks: list[Chunk], text: str, *, doc_id: str = "d") -> SimpleNamespace:
    return SimpleNamespace(docs={doc_id: SimpleNamespace(text=text)}, chunks={c.chunk_id: c for c in chunks})
