"""述职报告 drafting: duties found by retrieval and cited verbatim, the user's facts kept word for word,
exported as Markdown or Word.

Example:
    >>> from assistant.draft import Drafter, DraftRequest, to_docx, to_markdown
    >>> draft = Drafter(assistant.kb, assistant.retriever).draft(DraftRequest("校长", "某某镇中心校", 2026, facts))
    >>> Path("report.docx").write_bytes(to_docx(draft, kind_of=kinds_of(assistant.kb, draft)))
"""

from __future__ import annotations

from assistant.draft.check import FactCheck, check_facts, doc_numbers_in, names_in, numbers_in, verify_draft
from assistant.draft.compose import Drafter
from assistant.draft.facts import classify_fact, clean_text, split_facts
from assistant.draft.intent import DraftIntent, draft_intent
from assistant.draft.markdown import escape_markdown, to_markdown
from assistant.draft.model import (
    DRAFT_ROLES,
    SECTION_KEYS,
    Block,
    Draft,
    DraftInputError,
    DraftRequest,
    DraftSection,
    Fact,
    draft_to_json,
)
from assistant.draft.rules import parse_section
from assistant.draft.word import DocxStyle, to_docx, write_docx
from assistant.index import KnowledgeBase


def kinds_of(kb: KnowledgeBase, draft: Draft) -> dict[str, str]:
    """Document kind of each cited chunk, so exports can label sample reports as such."""
    return {c.chunk_id: kb.chunks[c.chunk_id].doc_kind for c in draft.citations if c.chunk_id in kb.chunks}


__all__ = [
    "DRAFT_ROLES", "SECTION_KEYS", "Block", "DocxStyle", "Draft", "DraftInputError", "DraftIntent", "DraftRequest", "DraftSection",
    "Drafter", "Fact", "FactCheck", "check_facts", "classify_fact", "clean_text", "doc_numbers_in", "draft_intent", "draft_to_json",
    "escape_markdown", "kinds_of", "names_in", "numbers_in", "parse_section", "split_facts", "to_docx", "to_markdown",
    "verify_draft", "write_docx",
]
