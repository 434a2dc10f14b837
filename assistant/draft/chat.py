"""Drafting from a chat message: 「帮我写述职报告的履职情况部分，我们今年……」 → a cited draft as Markdown and .docx.

Shared by the HTTP chat routes and ``duty chat``. The role comes from the caller (request or session), else
from the message, else 校长; unit and year come from the message when it names them, else a placeholder the
draft marks 「（请补充单位名称）」 and the current year. The facts are the text after the request, verbatim.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from assistant.draft.intent import DraftIntent, draft_intent
from assistant.draft.model import DRAFT_ROLES, MAX_UNIT_CHARS, Draft, DraftRequest
from assistant.prompts import render
from assistant.retrieve import ROLE_ALIASES, ROLE_TERMS, canonical_role
from assistant.types import Answer

if TYPE_CHECKING:
    from assistant.pipeline import Assistant

DEFAULT_ROLE = "校长"
_UNIT_SUFFIX = r"(?:中心校|中心学校|学校|小学|中学|初中|高中|幼儿园|职业中学|职校|教育局|学区|教办)"
_UNIT_LABELLED = re.compile(r"(?:(?:单位(?:名称)?|学校名称)\s*(?:[:：=]|是|为)|学校\s*[:：=])\s*([^\s，,。；;:：！!？?、]{2,60})")
_UNIT_INTRODUCED = re.compile(rf"(?:我是|本人是|本人系|我系)\s*([\u4e00-\u9fffA-Za-z0-9·（）()]{{2,40}}?{_UNIT_SUFFIX})")
_ROLE_NAMES = sorted((set(ROLE_TERMS) | set(ROLE_ALIASES)), key=len, reverse=True)
_FILENAME_UNSAFE = re.compile(r'[\\/:*?"<>|\s\x00-\x1f]+')


@dataclass(frozen=True, slots=True)
class ChatDraft:
    """A draft made from a chat message, ready to send: the draft, its Markdown, the .docx and an Answer view."""

    draft: Draft
    markdown: str
    docx: bytes
    typed: str

    def answer(self, link_line: str = "") -> Answer:
        """The draft as an :class:`Answer` (text = Markdown plus the download line), for sessions and JSON."""
        text = self.markdown.rstrip() + (f"\n\n{link_line}" if link_line else "")
        citations = self.draft.citations
        return Answer(self.typed, text, bool(citations), self.draft.mode, citations, notices=self.draft.notices)


def role_in(text: str) -> str | None:
    """The drafting role a message names (「我是分管副校长」 → 分管副校长), or None."""
    for name in _ROLE_NAMES:
        if name in text:
            role = canonical_role(name)
            if role in DRAFT_ROLES:
                return role
    return None


def unit_in(text: str) -> str | None:
    """The unit a message names (「单位：某某镇中心校」「我是某某镇中心校校长」), or None."""
    for pattern in (_UNIT_LABELLED, _UNIT_INTRODUCED):
        match = pattern.search(text)
        if match and len(match.group(1)) <= MAX_UNIT_CHARS:
            return match.group(1)
    return None


def chat_request(message: str, intent: DraftIntent, *, role: str | None, today: dt.date | None = None) -> tuple[DraftRequest, tuple[str, ...]]:
    """The DraftRequest for a chat message, and notices for every value that was not given."""
    notices: list[str] = []
    chosen = canonical_role(role) if role else None
    if chosen not in DRAFT_ROLES:
        chosen = role_in(message)
    if chosen is None:
        chosen = DEFAULT_ROLE
        notices.append(render("draft_chat", "notice_role_default", role=chosen))
    unit = unit_in(message)
    if unit is None:
        unit = render("draft_chat", "unit_placeholder")
        notices.append(render("draft_chat", "notice_unit_missing"))
    year = intent.year
    if year is None:
        year = (today or dt.date.today()).year
        notices.append(render("draft_chat", "notice_year_default", year=year))
    return DraftRequest(chosen, unit, year, intent.facts, intent.section), tuple(notices)


def draft_from_chat(assistant: Assistant, message: str, *, role: str | None, mode: str | None = None,
                    today: dt.date | None = None) -> ChatDraft | None:
    """The draft a chat message asks for, or None when the message is not a drafting request.

    Raises:
        DraftInputError: the request cannot be drafted (facts too long…).
    """
    intent = draft_intent(message)
    if intent is None:
        return None
    from assistant.draft import kinds_of, to_docx, to_markdown

    request, notices = chat_request(message, intent, role=role, today=today)
    draft = assistant.drafter(_draft_mode(mode)).draft(request)
    draft = replace(draft, notices=notices + tuple(draft.notices))
    kinds = kinds_of(assistant.kb, draft)
    return ChatDraft(draft, to_markdown(draft, kind_of=kinds), to_docx(draft, kind_of=kinds), message)


def _draft_mode(mode: str | None) -> str | None:
    """Chat modes (extractive/llm) mapped onto draft modes (template/llm)."""
    return "template" if mode == "extractive" else mode


def docx_filename(draft: Draft) -> str:
    """A safe file name for the draft: 「某某镇中心校2026年度述职报告.docx」."""
    if draft.unit == render("draft_chat", "unit_placeholder"):
        stem = render("draft_chat", "filename_no_unit", year=draft.year)
    else:
        stem = render("draft_chat", "filename", unit=draft.unit, year=draft.year)
    return _FILENAME_UNSAFE.sub("_", stem).strip("._")[:80] + ".docx"
