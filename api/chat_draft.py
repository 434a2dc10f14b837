"""Chat requests for a 述职报告 draft (「帮我写述职报告的履职情况部分，我们今年……」) on /v1/ask and
/v1/chat/completions: the reply is the cited Markdown draft plus a link to the .docx (GET /v1/drafts/{id}.docx)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from api.deps import Runtime
from api.service import load_conversation
from assistant.draft.chat import ChatDraft, docx_filename, draft_from_chat
from assistant.draft.intent import draft_intent
from assistant.draft.store import KEEP_DAYS, DraftStore
from assistant.prompts import render
from assistant.retrieve import canonical_role
from assistant.schema import answer_to_json
from assistant.types import Answer


@dataclass(frozen=True, slots=True)
class DraftReply:
    """A chat turn answered with a draft: the answer (Markdown + link) and the extra ``draft`` field."""

    answer: Answer
    draft: dict

    def ask_json(self, session_id: str | None) -> dict:
        """The /v1/ask body: the usual answer shape plus ``draft``."""
        body = {**answer_to_json(self.answer), "draft": self.draft}
        if session_id:
            body["session_id"] = session_id
        return body


def is_draft_request(text: str) -> bool:
    return draft_intent(text) is not None


def draft_reply(runtime: Runtime, typed: str, *, role: str | None, mode: str | None, session_id: str | None,
                base_url: str) -> DraftReply | None:
    """The draft reply for ``typed``, or None when it does not ask for a draft. Stores the .docx and the turn."""
    if not is_draft_request(typed):
        return None
    role = _session_role(runtime, role, session_id)
    with runtime.gate.read():
        made = draft_from_chat(runtime.assistant, typed, role=role, mode=mode)
    if made is None:
        return None
    draft_id = DraftStore.for_kb(runtime.assistant.kb.root).save(made.docx)
    url = f"{base_url.rstrip('/')}/v1/drafts/{draft_id}.docx"
    answer = made.answer(render("draft_chat", "download_line", url=url, days=KEEP_DAYS))
    if session_id:
        runtime.sessions.record(session_id, typed, typed, answer)
    return DraftReply(answer, draft_field(made, url))


def _session_role(runtime: Runtime, role: str | None, session_id: str | None) -> str | None:
    """The request's role, else the session's; a new role is remembered in the session (as for questions)."""
    role = canonical_role(role)
    if not session_id:
        return role
    conversation = load_conversation(runtime, session_id)
    if role and role != conversation.role:
        runtime.sessions.set_role(session_id, role)
    return role or conversation.role


def draft_field(made: ChatDraft, url: str) -> dict:
    """The extra ``draft`` field: title, download link and the structure the web page renders as a card."""
    draft = made.draft
    return {
        "title": draft.title,
        "download_url": url,
        "filename": docx_filename(draft),
        "expires_in_days": KEEP_DAYS,
        "role": draft.role,
        "unit": draft.unit,
        "year": draft.year,
        "preamble": "\n".join(b.text for b in draft.preamble),
        "sections": [{"key": s.key, "heading": s.heading, "text": s.text, "placeholders": list(s.placeholders)}
                     for s in draft.sections],
        "closing": "\n".join(b.text for b in draft.closing),
    }


def split_text(text: str, size: int = 400) -> Iterator[str]:
    """The reply text in pieces, for streaming clients that render as they go."""
    for start in range(0, len(text), size):
        yield text[start : start + size]
