"""LLM drafting of 述职报告 sections. The template drafter chooses the duties to cite and sorts the user's
facts; the model turns each section into prose; every section then passes the same citation verification
as answers plus the fact-preservation check, or the template's section is kept with a notice."""

from __future__ import annotations

import logging
import re
from dataclasses import replace

from assistant.draft import Block, Draft, Drafter, DraftRequest, DraftSection, check_facts, verify_draft
from assistant.errors import LLMError
from assistant.index import KnowledgeBase
from assistant.llm.model import ChatClient
from assistant.llm.verify import DUTY_CLAIMS, CitationVerifier, Passage
from assistant.prompts import render
from assistant.types import Citation

log = logging.getLogger(__name__)
_MARKER = re.compile(r"\[(\d+)\]")


class LLMDrafter:
    """Same interface as :class:`assistant.draft.Drafter`; ``mode`` of the result says who wrote it."""

    mode = "llm"

    def __init__(self, client: ChatClient, kb: KnowledgeBase, template: Drafter) -> None:
        self.client = client
        self.kb = kb
        self.template = template

    def draft(self, request: DraftRequest) -> Draft:
        """The draft, section by section in the model's words where they verify.

        Raises:
            DraftInputError: as the template drafter (unknown role, empty unit …).
        """
        base = self.template.draft(request)
        sections: list[DraftSection] = []
        notices: list[str] = []
        for section in base.sections:
            try:
                written, notice = self._write(base, section)
            except LLMError as exc:  # model unreachable: keep the template for this and the remaining sections
                log.warning("LLM drafting failed, keeping the template: %s", exc)
                notices.append(render("llm", "draft_notice_unavailable"))
                sections.extend(base.sections[len(sections) :])
                break
            sections.append(written)
            notices.extend([notice] if notice else [])
        by_model = any(s is not b for s, b in zip(sections, base.sections, strict=True))
        draft = replace(base, sections=tuple(sections), mode=self.mode if by_model else base.mode,
                        notices=tuple(dict.fromkeys((*base.notices, *notices))))
        return verify_draft(draft, self.kb, request.facts or "")

    def _write(self, base: Draft, section: DraftSection) -> tuple[DraftSection, str]:
        """The model's version of ``section`` if it verifies, else the template's and a notice."""
        if not section.citations:
            return section, ""  # nothing to cite: the template's placeholders ask the user instead
        passages = [_passage(i + 1, c, self.kb) for i, c in enumerate(section.citations)]
        facts = "\n".join(f.text for f in section.facts)
        block = render("llm", "passages", passages=[
            {"n": p.n, "title": p.chunk.doc_title, "section": p.chunk.section.replace(" > ", " "), "text": p.text} for p in passages
        ])
        prompt = render("llm", "draft_section", unit=base.unit, role=base.role, year=base.year, heading=section.heading,
                        facts=facts, passages=block)
        reply = self.client.complete([("system", render("llm", "system")), ("user", prompt)])
        verifier = CitationVerifier(passages, self.kb, claims=DUTY_CLAIMS)
        verifier.feed(reply)
        verifier.finish()
        local = verifier.citations()
        if not local:
            return section, render("llm", "draft_notice_unverified", heading=section.heading)
        # passage n → its citation number in the whole draft
        to_draft = {shown: section.citations[n - 1].n for n, shown in verifier.numbering.items()}
        text = _MARKER.sub(lambda m: f"[{to_draft.get(int(m.group(1)), m.group(1))}]", verifier.text)
        cited = tuple(sorted((replace(c, n=to_draft[c.n]) for c in local), key=lambda c: c.n))
        check = check_facts(facts, text, cited, allowed=(base.unit, str(base.year)))
        if not check.ok:
            items = "、".join((*check.missing_items, *check.unsupported_numbers))
            return section, render("llm", "draft_notice_facts", heading=section.heading, items=items)
        blocks = tuple(Block("prose", line.strip()) for line in text.split("\n") if line.strip())
        return DraftSection(section.key, section.heading, blocks, cited, section.facts, ()), ""


def _passage(n: int, citation: Citation, kb: KnowledgeBase) -> Passage:
    """The template's verified quote as a numbered passage (offsets into its chunk)."""
    chunk = kb.chunks[citation.chunk_id]
    start, end = citation.start - chunk.start, citation.end - chunk.start
    return Passage(n, chunk, start, end, (0, end - start))
