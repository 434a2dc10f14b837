"""Shared bits of the LLM-mode tests: picking quotable clauses from the passages the model was sent."""

from __future__ import annotations

import re

from fake_openai import Recorded

from assistant.schema import answer_to_json
from assistant.types import Answer

ARTICLE_NO = re.compile(r"^第[一二三四五六七八九十百千零]+条(之[一二三四五六七八九十]+)?\s*")
QUESTION = "校车驾驶人应当具备哪些条件？"


def clause(text: str, index: int = 0) -> str:
    """The ``index``-th clause (8+ characters) of a passage, without its article number."""
    pieces = [p.strip() for p in re.split(r"[，。；：\n]", ARTICLE_NO.sub("", text.strip())) if len(p.strip()) >= 8]
    return pieces[index]


def passage_text(body: dict, n: int) -> str:
    return Recorded(body, {}).passages()[n][2]


def assert_citations_exact(assistant, answer: Answer) -> None:
    """Every citation's quote is exactly the cited span of the stored source text."""
    for c in answer_to_json(answer)["citations"]:
        doc = assistant.kb.docs[assistant.kb.chunks[c["chunk_id"]].doc_id]
        assert doc.text[c["start"] : c["end"]] == c["quote"]
