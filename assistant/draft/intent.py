"""Recognise a request for a draft in a chat message, for the chat and WeCom channels:
「帮我写述职报告的履职情况部分，我们今年加固了三所幼儿园园舍……」 → section duties, the facts after it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.draft.rules import Rules, load_rules, parse_section
from assistant.errors import AssistantError

_YEAR = re.compile(r"(?<!\d)((?:19|20)\d{2})\s*年")
_BREAK = re.compile(r"[，。,:：；;！!？?\n]")


@dataclass(frozen=True, slots=True)
class DraftIntent:
    section: str | None  # a section key; None = the whole report
    facts: str  # the rest of the message, verbatim
    year: int | None = None  # when the message names one (「2026年」)


def draft_intent(message: str, *, rules: Rules | None = None) -> DraftIntent | None:
    """The draft request in ``message``, or None when it asks something else.

    The request is the clause that mentions 述职报告; a section named in it (「履职情况部分」) selects that
    section; everything after the clause is the user's facts, untouched.
    """
    rules = rules or load_rules()
    match = rules.chat_request.search(message)
    if match is None:
        return None
    stop = _BREAK.search(message, match.end())
    clause = message[: stop.start() if stop else len(message)]
    facts = message[stop.end() :].strip() if stop else ""
    section = None
    tail = clause[match.start() :]
    if re.search(r"部分|一节|这段|段落", tail) or re.search(r"[一二三四1-4]、", tail):
        try:
            section = parse_section(re.sub(r"^.*?述职(?:报告)?(?:的|中的)?", "", tail).replace("部分", ""))
        except AssistantError:
            section = None
    year = _YEAR.search(message)
    return DraftIntent(section, facts, int(year.group(1)) if year else None)
