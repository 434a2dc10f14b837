"""Template-mode drafting: the role's duties, found by retrieval and quoted verbatim with citations, put
together with the user's own facts under the four standard headings. Phrasing comes from prompts/draft.yaml."""

from __future__ import annotations

import re
from dataclasses import replace

from assistant.answer import CitationError, cite, verified
from assistant.draft.check import check_facts, unknown_doc_numbers
from assistant.draft.facts import clean_line, clean_text, facts_by_section, split_facts
from assistant.draft.model import (
    DRAFT_ROLES,
    MAX_FACTS_CHARS,
    MAX_UNIT_CHARS,
    SECTION_KEYS,
    YEAR_RANGE,
    Block,
    Draft,
    DraftInputError,
    DraftRequest,
    DraftSection,
    Fact,
)
from assistant.draft.provisions import Provision, ProvisionFinder
from assistant.draft.rules import Rules, load_rules, parse_section
from assistant.index import KnowledgeBase
from assistant.prompts import render
from assistant.retrieve import HybridRetriever, canonical_role
from assistant.types import Citation

_MARKER_ONLY = re.compile(r"^[\s(（]*(?:\d+|[一二三四五六七八九十]+)[)）、.．]?\s*$")
_ARTICLE = re.compile(r"^第[一二三四五六七八九十百千零〇\d]+条")
_SENTENCE_END = ("。", "；", "！", "？", "”", "」", ";", "!", "?")


def _t(key: str, **variables: object) -> str:
    return render("draft", key, **variables)


class Drafter:
    """Builds 述职报告 drafts from the knowledge base. Deterministic; no model needed.

    Example:
        >>> drafter = Drafter(assistant.kb, assistant.retriever)
        >>> draft = drafter.draft(DraftRequest(role="校长", unit="某某镇中心校", year=2026, facts="…"))
    """

    mode = "template"

    def __init__(self, kb: KnowledgeBase, retriever: HybridRetriever, *, rules: Rules | None = None) -> None:
        self.kb = kb
        self.retriever = retriever
        self.rules = rules or load_rules()

    def draft(self, request: DraftRequest) -> Draft:
        """Compose the draft for ``request``.

        Raises:
            DraftInputError: unknown role or section, empty unit, year out of range, facts too long.
        """
        role, unit, year, only = self._validate(request)
        facts_text, dropped = clean_text(request.facts or "")
        if len(facts_text) > MAX_FACTS_CHARS:
            raise DraftInputError(f"the facts are {len(facts_text)} characters; keep them under {MAX_FACTS_CHARS} (about ten pages)")
        self.kb.refresh()
        facts = split_facts(facts_text, rules=self.rules, section=only)
        grouped = facts_by_section(facts)
        keys = (only,) if only else SECTION_KEYS
        display = self._display_role(role, unit)
        finder = ProvisionFinder(self.kb, self.retriever, role, self.rules, facts=[f.text for f in facts], unit=unit)
        numbering = _Numbering(self.kb)
        sections = []
        for key in keys:
            provisions = finder.find(key, [f.text for f in grouped[key]])
            sections.append(self._section(key, display, provisions, grouped[key], numbering))
        heading = _t(f"heading_{only}") if only else ""
        title = _t("title_section", unit=unit, role=display, year=year, section=_plain_heading(heading)) if only else _t("title", unit=unit, role=display, year=year)
        preamble = () if only else (Block("lead", _t("opening", unit=unit, role=display, year=year)),)
        closing = () if only else (Block("signature", _t("signature", unit=unit, role=display)), Block("date", _t("date_line", year=year)))
        draft = Draft(title, role, unit, year, tuple(sections), preamble, closing, (), self.mode, tuple(facts))
        notices = self._notices(draft, facts_text, dropped, numbering.dropped, heading if only and facts else "")
        return _with_notices(draft, notices)

    # ------------------------------------------------------------------ pieces
    def _validate(self, request: DraftRequest) -> tuple[str, str, int, str | None]:
        role = canonical_role(request.role)
        if role not in DRAFT_ROLES:
            raise DraftInputError(f"cannot draft a report for role {request.role!r}; use one of {', '.join(DRAFT_ROLES)}")
        unit = clean_line(request.unit or "")
        if not unit:
            raise DraftInputError("the unit name is empty; give the school or office, e.g. 某某镇中心校")
        if len(unit) > MAX_UNIT_CHARS:
            raise DraftInputError(f"the unit name is {len(unit)} characters; keep it under {MAX_UNIT_CHARS}")
        try:
            year = int(request.year)
        except (TypeError, ValueError) as exc:
            raise DraftInputError(f"year {request.year!r} is not a number; give e.g. 2026") from exc
        if not YEAR_RANGE[0] <= year <= YEAR_RANGE[1]:
            raise DraftInputError(f"year {year} is out of range {YEAR_RANGE[0]}–{YEAR_RANGE[1]}")
        return role, unit, year, parse_section(request.section)

    def _display_role(self, role: str, unit: str) -> str:
        """How the person is named after the unit: 某某县教育局 + 教育局负责人 → 某某县教育局负责人."""
        title = self.rules.role_titles.get(role, role)
        for k in range(len(title) - 1, 1, -1):
            if unit.endswith(title[:k]):
                return title[k:]
        return title

    def _section(self, key: str, role: str, provisions: list[Provision], facts: list[Fact], numbering: _Numbering) -> DraftSection:
        stated = numbering.state(provisions)
        basis = [Block("provision", text, n) for n, text in stated] or [Block("placeholder", _t("no_provisions"))]
        fact_blocks = [Block("fact", _t("fact_item", i=i + 1, fact=f.text)) for i, f in enumerate(facts)]
        missing = _t(f"{'duties_facts' if key == 'duties' else key}_missing")
        placeholders: tuple[str, ...] = () if facts else (missing,)
        told = fact_blocks or [Block("placeholder", missing)]
        if key == "duties":
            blocks = [Block("subheading", _t("sub_duties_basis")), Block("lead", _t("duties_basis_lead", role=role)), *basis,
                      Block("subheading", _t("sub_duties_facts")), *([Block("lead", _t("duties_facts_lead"))] if facts else []), *told]
        elif key == "work":
            blocks = [Block("lead", _t("work_lead")), *told, Block("lead", _t("work_basis_lead")), *basis]
        elif key == "problems":
            blocks = [Block("lead", _t("problems_basis_lead")), *basis, Block("lead", _t("problems_lead")), *told]
        else:
            blocks = [Block("lead", _t("plans_lead")), *basis, Block("lead", _t("plans_facts_lead")), *told]
        cited = tuple(numbering.citations[n] for n, _ in stated)
        return DraftSection(key, _t(f"heading_{key}"), tuple(blocks), cited, tuple(facts), placeholders)

    def _notices(self, draft: Draft, facts_text: str, dropped_chars: int, dropped_citations: int, single: str) -> list[str]:
        notices: list[str] = []
        empty = [s.heading for s in draft.sections if s.placeholders]
        if empty:
            notices.append(_t("notice_placeholders", parts="、".join(empty)))
        if single:
            notices.append(_t("notice_single_section", heading=single))
        for number in unknown_doc_numbers(facts_text, self.kb, self.rules):
            notices.append(_t("notice_doc_number", number=number))
        citations = draft.citations
        if not citations:
            notices.append(_t("notice_no_provisions", role=draft.role))
        elif any(self.kb.chunks[c.chunk_id].doc_kind == "sample_report" for c in citations):
            notices.append(_t("notice_sample_only"))
        if dropped_chars:
            notices.append(_t("notice_control_chars", count=dropped_chars))
        if dropped_citations:
            notices.append(_t("notice_dropped_citations", count=dropped_citations))
        notices.extend(check_facts(facts_text, draft.text, citations, allowed=(draft.unit, str(draft.year))).notices())
        return notices


class _Numbering:
    """Numbers citations in order of appearance and verifies each quote against its source."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        self.citations: dict[int, Citation] = {}
        self.numbers: dict[tuple[str, tuple[int, int]], int] = {}
        self.dropped = 0

    def state(self, provisions: list[Provision]) -> list[tuple[int, str]]:
        out = []
        for p in provisions:
            again = self.numbers.get((p.chunk.chunk_id, p.span))
            if again is not None:  # stated in an earlier section: same number
                out.append((again, provision_text(self.citations[again], p.chunk.doc_kind)))
                continue
            n = len(self.citations) + 1
            try:
                citation = cite(n, p.chunk, self.kb, p.span)
            except CitationError:
                self.dropped += 1
                continue
            if not verified([citation], self.kb):
                self.dropped += 1
                continue
            self.citations[n] = citation
            self.numbers[(p.chunk.chunk_id, p.span)] = n
            out.append((n, provision_text(citation, p.chunk.doc_kind)))
        return out


def provision_text(c: Citation, doc_kind: str) -> str:
    """「《title》第八条规定：“quote”[n]」 — the duty statement as it appears in the body."""
    label = _t("provision_label_sample") if doc_kind == "sample_report" else _t("provision_label_law")
    return _t("provision", title=c.doc_title, section=short_section(c.section), label=label, quote=c.quote, more=quote_more(c.quote), n=c.n)


def quote_more(quote: str) -> str:
    """「……」 after a quote that stops mid-sentence."""
    return "" if quote.rstrip().endswith(_SENTENCE_END) else _t("quote_more")


def short_section(section: str) -> str:
    """「第一章 总则 > 第八条」 → 「第八条」; other paths without bare list markers (「2、」)."""
    parts = [p.strip() for p in section.split(" > ") if p.strip()]
    articles = [p for p in parts if _ARTICLE.match(p)]
    if articles:
        return articles[-1]
    return " ".join(p for p in parts if not _MARKER_ONLY.match(p))


def _plain_heading(heading: str) -> str:
    return re.sub(r"^[一二三四五六七八九十]+、", "", heading)


def _with_notices(draft: Draft, notices: list[str]) -> Draft:
    return replace(draft, notices=tuple(dict.fromkeys(notices)))
