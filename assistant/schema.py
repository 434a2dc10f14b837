"""The JSON shapes shared by the CLI's ``--json`` output and the HTTP API (DESIGN §7)."""

from __future__ import annotations

from assistant.types import Answer, Citation, Hit, RemovedCitation


def hit_to_json(hit: Hit) -> dict:
    c = hit.chunk
    return {
        "rank": hit.rank, "score": hit.score, "chunk_id": c.chunk_id, "doc_title": c.doc_title, "section": c.section,
        "text": c.text, "source": c.source, "start": c.start, "end": c.end,
    }


def citation_to_json(c: Citation) -> dict:
    return {
        "n": c.n, "chunk_id": c.chunk_id, "doc_title": c.doc_title, "section": c.section, "quote": c.quote,
        "source": c.source, "start": c.start, "end": c.end,
    }


def removed_citation_to_json(r: RemovedCitation) -> dict:
    data = {"marker": r.marker, "reason": r.reason}
    data.update({k: v for k, v in (("quote", r.quote), ("replacement", r.replacement), ("sentence", r.sentence)) if v})
    return data


def search_to_json(query: str, hits: list[Hit]) -> dict:
    return {"query": query, "hits": [hit_to_json(h) for h in hits]}


def answer_to_json(answer: Answer) -> dict:
    data = {
        "question": answer.question, "answer": answer.answer, "grounded": answer.grounded, "mode": answer.mode,
        "citations": [citation_to_json(c) for c in answer.citations],
        "related": [hit_to_json(h) for h in answer.related],
    }
    if answer.notices:
        data["notices"] = list(answer.notices)
    if answer.removed_citations:
        data["removed_citations"] = [removed_citation_to_json(r) for r in answer.removed_citations]
    return data
