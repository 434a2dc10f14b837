"""Answers built from retrieved passages. Extractive mode quotes sentences verbatim; every citation is
checked against the stored source text before it leaves this module."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial

from assistant.bm25 import idf_of
from assistant.grounding import missing_quantity, missing_resource
from assistant.index import KnowledgeBase
from assistant.prompts import render
from assistant.retrieve import (
    HybridRetriever,
    RetrievalResult,
    canonical_role,
    is_other_level,
    only_elsewhere,
    role_duties,
)
from assistant.text import named_places, sentence_spans
from assistant.types import Answer, Chunk, Citation, Hit

MAX_QUOTE_CHARS = 260
# A list is quoted with its items (「有下列情形之一的」 says nothing without them), up to this length.
MAX_LIST_QUOTE_CHARS = 600
# An item of a list: （一） (1) 1、 一、 1.
_LIST_ITEM = re.compile(r"\s*(?:[（(][一二三四五六七八九十百\d]{1,3}[）)]|[一二三四五六七八九十百\d]{1,3}[、.．])")
ROLE_IN_TEXT = (
    ("分管副校长", "分管副校长"), ("副校长", "分管副校长"), ("班主任", "班主任"), ("校长", "校长"),
    ("教育局", "教育局"), ("老师", "教师"), ("教师", "教师"), ("家长", "家长"),
)


@dataclass(frozen=True, slots=True)
class GroundedPolicy:
    """When the evidence does not speak to the question, the assistant says the texts do not answer.

    All three checks read the top three passages (assistant/grounding.py). ``min_topic_coverage``: share of
    the question's topic words they must contain; ``check_quantity``: refuse when a number is asked for and
    none of them states one in a sentence about the question's subject (idf-weighted against the retriever's
    index, each passage's title and heading path counting towards the subject); ``check_resource``: refuse
    when a form, template, web resource or a particular school is asked for and none of them names one;
    ``check_place``: refuse when the question names a place and only other places' regulations come near, and
    leave kindergarten texts out of the evidence for a question about a primary or secondary school.
    Calibrated on eval/dev.jsonl and eval/refusal_probe.jsonl (eval/README.md).
    """

    min_topic_coverage: float = 0.08
    check_quantity: bool = True
    check_resource: bool = True
    check_place: bool = True

    def applicable(self, hits: Iterable[Hit], question: str) -> list[Hit]:
        """``hits`` that can answer ``question``: a kindergarten text says nothing about what a primary or
        secondary school must do."""
        return [h for h in hits if not (self.check_place and is_other_level(h.chunk, question))]

    def decide(self, result: RetrievalResult) -> bool:
        if not result.hits:
            return False
        question = result.plan.question
        evidence = self.applicable(result.hits[:3], question)
        if not evidence:
            return False
        passages = [h.chunk.text for h in evidence]
        headings = [f"{h.chunk.doc_title} {h.chunk.section}" for h in evidence]
        # The retriever's index weighs the question's words (a rare word says more about its subject).
        idf = partial(idf_of, result.bm25)
        if self.check_quantity and missing_quantity(
            question, passages, ignore=result.plan.role_words, idf=idf, headings=headings
        ):
            return False
        if self.check_resource and missing_resource(question, passages):
            return False
        if self.check_place and only_elsewhere(question, (h.chunk for h in result.hits[:3])):
            return False
        return result.signals.topic_coverage >= self.min_topic_coverage


class CitationError(AssertionError):
    """A quote did not match its source: a bug, never shown to users as a citation."""


def detect_role(question: str) -> str | None:
    for word, role in ROLE_IN_TEXT:
        if word in question:
            return role
    return None


def cite(n: int, chunk: Chunk, kb: KnowledgeBase, rel: tuple[int, int]) -> Citation:
    """A citation for ``chunk.text[rel[0]:rel[1]]``, verified against the document's stored text."""
    quote = chunk.text[rel[0] : rel[1]]
    start, end = chunk.start + rel[0], chunk.start + rel[1]
    doc = kb.docs.get(chunk.doc_id)
    if not quote or doc is None or doc.text[start:end] != quote:
        raise CitationError(f"quote for {chunk.chunk_id} does not match its source at {start}:{end}")
    return Citation(n, chunk.chunk_id, chunk.doc_title, chunk.section, quote, chunk.source, start, end)


def verified(citations: Iterable[Citation], kb: KnowledgeBase) -> list[Citation]:
    """Keep only citations whose quote is exactly the cited span of the cited document."""
    good = []
    for c in citations:
        doc = kb.docs.get(kb.chunks[c.chunk_id].doc_id) if c.chunk_id in kb.chunks else None
        if doc is not None and c.quote and doc.text[c.start : c.end] == c.quote:
            good.append(c)
    return good


def _quote_span(chunk: Chunk, focus: tuple[int, int] | None, *, items: bool = True) -> tuple[int, int]:
    """The focus sentence, widened to the next sentence when it is only a lead-in (ends with ：), and (with
    ``items``) to the items of the list it introduces (「应当履行下列职责：」「有下列情形之一的，……」)."""
    text = chunk.text
    spans = sentence_spans(text)
    if not spans:
        return (0, len(text))
    if focus is None:
        focus = spans[0]
    start, end = focus
    following = [s for s in spans if s[0] >= end]
    lead_in = "下列" in text[start:end] or text[start:end].rstrip().endswith(("：", ":"))
    while following and (text[start:end].rstrip().endswith(("：", ":")) or end - start < 25) and following[0][1] - start <= MAX_QUOTE_CHARS:
        end = following.pop(0)[1]
    if lead_in and items:
        while following and _LIST_ITEM.match(text, following[0][0]) and following[0][1] - start <= MAX_LIST_QUOTE_CHARS:
            end = following.pop(0)[1]
        if end - start > MAX_QUOTE_CHARS:
            return (start, end)  # whole items only, within MAX_LIST_QUOTE_CHARS
    if end - start > MAX_QUOTE_CHARS:
        cut = text.rfind("，", start, start + MAX_QUOTE_CHARS)
        end = cut + 1 if cut > start + 40 else start + MAX_QUOTE_CHARS
    return (start, end)


class ExtractiveAnswerer:
    """Deterministic, offline answers: the sentences that answer, quoted verbatim and numbered."""

    mode = "extractive"

    def __init__(self, kb: KnowledgeBase, retriever: HybridRetriever, *, policy: GroundedPolicy | None = None, top_k: int = 8) -> None:
        self.kb = kb
        self.retriever = retriever
        self.policy = policy or GroundedPolicy()
        self.top_k = top_k

    def answer(self, question: str, *, role: str | None = None) -> Answer:
        role = canonical_role(role) or detect_role(question)
        result = self.retriever.retrieve(question, k=self.top_k, role=role)
        return self.answer_retrieved(result, role)

    def answer_retrieved(self, result: RetrievalResult, role: str | None) -> Answer:
        """The extractive answer for a retrieval already made (also the LLM answerer's fallback)."""
        if result.plan.is_role_question and role and _is_general_duty_question(result):
            # No sentence of the texts lays a duty on this role: passages that merely name it do not answer.
            return self._checklist(result, role) or self._not_found(result)
        if not self.policy.decide(result):
            return self._not_found(result)
        return self._direct(result, role)

    # -------------------------------------------------------------- shapes of answers
    def _direct(self, result: RetrievalResult, role: str | None) -> Answer:
        hits = self.policy.applicable(result.hits, result.plan.question)  # decide() kept at least one
        top_focus = max(hits[0].focus_score, 1e-6)
        chosen: list[Hit] = [hits[0]]
        for hit in hits[1 : self.top_k]:
            if len(chosen) >= 4:
                break
            score = hit.focus_score
            if score >= 0.6 * top_focus and score >= 0.4:
                chosen.append(hit)
        # A list's items are quoted for the best passage, and for every passage when the question asks which ones.
        asks_items = result.plan.asks_list or result.plan.asks_what
        citations = [cite(i + 1, h.chunk, self.kb, _quote_span(h.chunk, h.focus, items=i == 0 or asks_items))
                     for i, h in enumerate(chosen)]
        lines = [render("extractive", "intro_role", role=role) if role else render("extractive", "intro")]
        for c in citations:
            lines.append(render("extractive", "item", n=c.n, title=c.doc_title, section=_short_section(c.section), quote=c.quote))
            note = self._version_note(c.chunk_id)
            if note:
                lines.append(note)
        lines.append(render("extractive", "closing"))
        related = tuple(h for h in hits if h not in chosen)[:5]
        return Answer(result.plan.question, "\n".join(lines), True, self.mode, tuple(verified(citations, self.kb)), related)

    def _checklist(self, result: RetrievalResult, role: str) -> Answer | None:
        items = role_duties(self.kb, role, result.plan.question, region=self.retriever.params.region)
        if not items:
            return None
        # Group by document in order of each document's strongest item; keep reading order inside.
        order: dict[str, int] = {}
        for item in items:
            order.setdefault(item.chunk.doc_id, len(order))
        items.sort(key=lambda item: (order[item.chunk.doc_id], item.chunk.ordinal, item.span))
        citations: list[Citation] = []
        lines = [render("extractive", "checklist_intro", role=role, count=len(items), docs=len(order))]
        current_doc = None
        for item in items:
            if item.chunk.doc_id != current_doc:
                current_doc = item.chunk.doc_id
                lines.append(render("extractive", "checklist_group", title=item.chunk.doc_title))
            c = cite(len(citations) + 1, item.chunk, self.kb, _quote_span(item.chunk, item.span))
            citations.append(c)
            lines.append(render("extractive", "checklist_item", n=c.n, section=_short_section(c.section), quote=c.quote))
        lines.append(render("extractive", "closing"))
        used = {item.chunk.chunk_id for item in items}
        related = tuple(h for h in result.hits if h.chunk.chunk_id not in used)[:5]
        return Answer(result.plan.question, "\n".join(lines), True, self.mode, tuple(verified(citations, self.kb)), related)

    def _not_found(self, result: RetrievalResult) -> Answer:
        related = tuple(result.hits[:5])
        lines = [render("extractive", "not_found")]
        question = result.plan.question
        if related:
            # Evidence only from other places' rules, or only from kindergartens' for a school: say so, since a
            # nearest article would mislead more there.
            if only_elsewhere(question, (h.chunk for h in related[:3])):
                lines.append(render("extractive", "not_found_place", place="、".join(named_places(question))))
            elif not self.policy.applicable(related[:3], question):
                lines.append(render("extractive", "not_found_level"))
            else:
                lines.append(render("extractive", "not_found_related"))
            lines.extend(render("extractive", "related_item", title=h.chunk.doc_title, section=_short_section(h.chunk.section)) for h in related)
        return Answer(result.plan.question, "\n".join(lines), False, self.mode, (), related)

    def _version_note(self, chunk_id: str) -> str:
        """Which version is cited, when the knowledge base holds several versions of the document."""
        doc = self.kb.docs[self.kb.chunks[chunk_id].doc_id]
        version = doc.meta.version or doc.meta.date
        if doc.doc_id in self.kb.superseded:
            return render("extractive", "old_version_note", version=version, newer=self.kb.superseded[doc.doc_id])
        if doc.doc_id in self.kb.has_older_versions:
            return render("extractive", "version_note", version=version)
        return ""


def _is_general_duty_question(result: RetrievalResult) -> bool:
    """「我的安全职责是什么」 asks for the whole list; 「发生火灾时我的职责是什么」 asks about one situation."""
    topical = [w for w in result.plan.words if w not in result.plan.role_words]
    return len(topical) <= 1


def _short_section(section: str) -> str:
    return section.replace(" > ", " ")
