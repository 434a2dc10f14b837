"""LLM answers: retrieve, prompt with numbered passages, stream, verify every citation, degrade safely."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Literal, Union

from assistant.answer import (
    ExtractiveAnswerer,
    GroundedPolicy,
    _is_general_duty_question,
    _quote_span,
    detect_role,
)
from assistant.errors import LLMError
from assistant.index import KnowledgeBase
from assistant.llm.model import ChatClient, Message
from assistant.llm.rewrite import rewrite_follow_up
from assistant.llm.verify import CitationVerifier, Passage
from assistant.prompts import render
from assistant.retrieve import HybridRetriever, RetrievalResult, canonical_role, role_duties
from assistant.types import Answer

log = logging.getLogger(__name__)

StreamEvent = Union[tuple[Literal["delta"], str], tuple[Literal["final"], Answer]]  # noqa: UP007
NOT_FOUND_MARK = "未找到依据"  # the phrase the prompts ask the model to use when passages do not answer


class LLMAnswerer:
    """Answers in fluent prose from an OpenAI-compatible model; every shown citation is verified.

    When retrieval is not grounded the model is not called (the extractive not-found answer is returned);
    when the model fails before anything verified was shown, the extractive answer is returned with a notice.
    """

    mode = "llm"

    def __init__(self, client: ChatClient, kb: KnowledgeBase, retriever: HybridRetriever, extractive: ExtractiveAnswerer, *,
                 policy: GroundedPolicy | None = None, top_k: int = 8) -> None:
        self.client = client
        self.kb = kb
        self.retriever = retriever
        self.extractive = extractive
        self.policy = policy or GroundedPolicy()
        self.top_k = top_k

    def answer(self, question: str, *, role: str | None = None) -> Answer:
        """The verified answer (one non-streaming request)."""
        final: Answer | None = None
        for kind, value in self._generate(question, role, stream=False):
            if kind == "final":
                final = value  # type: ignore[assignment]
        assert final is not None
        return final

    def stream(self, question: str, *, role: str | None = None) -> Iterator[StreamEvent]:
        """``("delta", text)`` of verified text as the model writes it, then ``("final", Answer)``.

        The deltas always add up to the final answer's text.
        """
        yield from self._generate(question, role, stream=True)

    def standalone_question(self, text: str, history: Sequence[str], *, fallback: str) -> str:
        """``text`` rewritten with the earlier questions into a standalone query; ``fallback`` if the model fails."""
        if not history:
            return text
        try:
            return rewrite_follow_up(self.client, text, history)
        except LLMError as exc:
            log.warning("follow-up rewrite failed, using the heuristic one: %s", exc)
            return fallback

    # ------------------------------------------------------------------ internals
    def _generate(self, question: str, role: str | None, *, stream: bool) -> Iterator[StreamEvent]:
        role = canonical_role(role) or detect_role(question)
        result = self.retriever.retrieve(question, k=self.top_k, role=role)
        prompt = self._prompt(result, role)
        if prompt is None:
            yield from _replay(self.extractive.answer_retrieved(result, role))
            return
        messages, passages = prompt
        verifier = CitationVerifier(passages, self.kb)
        raw: list[str] = []
        try:
            pieces = self.client.stream(messages) if stream else iter([self.client.complete(messages)])
            for piece in pieces:
                raw.append(piece)
                shown = verifier.feed(piece)
                if shown:
                    yield ("delta", shown)
            shown = verifier.finish()
            if shown:
                yield ("delta", shown)
        except LLMError as exc:
            log.warning("LLM answer failed, falling back: %s", exc)
            if not (verifier.text and verifier.citations()):
                fallback = self.extractive.answer_retrieved(result, role)
                notices = (*fallback.notices, render("llm", "notice_unavailable"))
                yield from _replay(replace(fallback, notices=notices))
                return
            yield ("final", self._grounded(result, verifier, render("llm", "notice_interrupted")))
            return
        if verifier.text and verifier.citations():
            closing = "\n\n" + render("llm", "closing")
            yield ("delta", closing)
            yield ("final", self._grounded(result, verifier, closing=closing))
            return
        yield from _replay(self._unverified(result, verifier, "".join(raw)))

    def _prompt(self, result: RetrievalResult, role: str | None) -> tuple[list[Message], list[Passage]] | None:
        """Messages and the passages they number; None when retrieval says the texts do not answer."""
        question = result.plan.question
        if result.plan.is_role_question and role and _is_general_duty_question(result):
            items = role_duties(self.kb, role, question, region=self.retriever.params.region)
            order: dict[str, int] = {}
            for item in items:
                order.setdefault(item.chunk.doc_id, len(order))
            items.sort(key=lambda item: (order[item.chunk.doc_id], item.chunk.ordinal, item.span))
            passages = []
            for i, item in enumerate(items):
                start, end = _quote_span(item.chunk, item.span)
                passages.append(Passage(i + 1, item.chunk, start, end, (0, end - start)))
            if not passages:
                return None  # no sentence lays a duty on this role (as in the extractive answer)
            return self._messages("checklist", passages, question, role), passages
        if not self.policy.decide(result):
            return None
        hits = self.policy.applicable(result.hits, question)[: self.top_k]
        passages = [Passage(i + 1, h.chunk, 0, len(h.chunk.text), _quote_span(h.chunk, h.focus)) for i, h in enumerate(hits)]
        return self._messages("answer", passages, question, role), passages

    @staticmethod
    def _messages(key: str, passages: list[Passage], question: str, role: str | None) -> list[Message]:
        block = render("llm", "passages", passages=[
            {"n": p.n, "title": p.chunk.doc_title, "section": p.chunk.section.replace(" > ", " "), "text": p.text} for p in passages
        ])
        return [("system", render("llm", "system")), ("user", render("llm", key, question=question, role=role, passages=block))]

    def _grounded(self, result: RetrievalResult, verifier: CitationVerifier, notice: str = "", *, closing: str = "") -> Answer:
        citations = tuple(verifier.citations())
        cited = {c.chunk_id for c in citations}
        related = tuple(h for h in result.hits if h.chunk.chunk_id not in cited)[:5]
        notices = tuple(n for n in (notice, _removed_notice(verifier)) if n)
        return Answer(result.plan.question, verifier.text + closing, True, self.mode, citations, related, notices,
                      tuple(verifier.removed))

    def _unverified(self, result: RetrievalResult, verifier: CitationVerifier, raw: str) -> Answer:
        """Nothing verifiable remained: the not-found answer, listing the nearest passages as related only."""
        related = tuple(result.hits[:5])
        lines = [render("llm", "not_found")]
        if related:
            lines.append(render("extractive", "not_found_related"))
            lines.extend(render("extractive", "related_item", title=h.chunk.doc_title, section=h.chunk.section.replace(" > ", " "))
                         for h in related)
        declined = NOT_FOUND_MARK in raw
        notices = () if declined else (render("llm", "notice_unverified"),)
        return Answer(result.plan.question, "\n".join(lines), False, self.mode, (), related, notices, tuple(verifier.removed))


def _removed_notice(verifier: CitationVerifier) -> str:
    return render("llm", "notice_removed", count=len(verifier.removed)) if verifier.removed else ""


def _replay(answer: Answer) -> Iterator[StreamEvent]:
    """An answer that is complete at once, streamed line by line."""
    for line in answer.answer.splitlines(keepends=True):
        yield ("delta", line)
    yield ("final", answer)
