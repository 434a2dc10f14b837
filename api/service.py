"""What the ask and chat-completion routes share: question checks, conversations, streaming plumbing."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from api.deps import Runtime
from api.errors import ApiError
from assistant.chat import Conversation
from assistant.pipeline import StreamEvent
from assistant.retrieve import canonical_role
from assistant.types import Answer


def check_question(text: str, max_chars: int) -> str:
    """The question, stripped; refuses blank and over-long ones with a message naming the limit."""
    text = text.strip()
    if not text:
        raise ApiError(400, "the question is empty; type what you want to know, e.g. 班主任的安全职责是什么？")
    if len(text) > max_chars:
        raise ApiError(400, f"the question has {len(text)} characters; the limit is {max_chars} (DUTY_MAX_QUESTION_CHARS)")
    return text


@dataclass
class PreparedTurn:
    """A question made standalone in the light of the conversation so far."""

    typed: str
    query: str
    role: str | None
    session_id: str | None = None


def load_conversation(runtime: Runtime, session_id: str) -> Conversation:
    conversation = runtime.sessions.load(session_id)
    if conversation is None:
        raise ApiError(404, f"unknown session_id {session_id!r}; it may have expired — create one with POST /v1/sessions")
    return conversation


def prepare_turn(
    runtime: Runtime, typed: str, *, role: str | None, mode: str | None = None, session_id: str | None = None,
    history: Conversation | None = None,
) -> PreparedTurn:
    """Resolve follow-ups (「那班主任呢？」) against the stored session or the given history (in LLM mode the
    model rewrites them)."""
    role = canonical_role(role)
    conversation = load_conversation(runtime, session_id) if session_id else (history or Conversation())
    if role and role != conversation.role:
        conversation.role = role
        if session_id:
            runtime.sessions.set_role(session_id, role)
    query, role_now = runtime.assistant.resolve(conversation, typed, mode=mode)
    return PreparedTurn(typed, query, role_now, session_id)


def record_turn(runtime: Runtime, turn: PreparedTurn, answer: Answer) -> None:
    if turn.session_id:
        runtime.sessions.record(turn.session_id, turn.typed, turn.query, answer)


def answer_stream(runtime: Runtime, turn: PreparedTurn, mode: str | None) -> Iterator[StreamEvent]:
    """The assistant's stream of events, started eagerly so that bad input fails before the response starts.

    The knowledge-base gate is held while the first event is produced: retrieval happens there (for the
    extractive answerer, everything does). An LLM keeps streaming tokens after that without blocking uploads.
    """
    with runtime.gate.read():
        events = runtime.assistant.ask_stream(turn.query, role=turn.role, mode=mode)
        first = next(events, None)

    def run() -> Iterator[StreamEvent]:
        if first is not None:
            yield first
        for event in events:
            if event[0] == "final":
                record_turn(runtime, turn, event[1])
            yield event

    if first is not None and first[0] == "final":
        record_turn(runtime, turn, first[1])
    return run()


def sse(data: object, *, event: str | None = None) -> str:
    """One Server-Sent Event; JSON data on a single line (no raw newlines can break the framing)."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n"


def guard_stream(chunks: Iterator[str], on_error: Callable[[Exception], str]) -> Iterator[str]:
    """Once the response has started a failure can only be reported inside the stream."""
    try:
        yield from chunks
    except Exception as exc:  # noqa: BLE001 - the status line is gone; tell the client in-band
        yield on_error(exc)


def citations_text(answer: Answer) -> str:
    """The citation list appended to chat-completion text: ``[n] 《title》section（source）``."""
    if not answer.citations:
        return ""
    lines = ["", "", "引用："]
    lines += [f"[{c.n}] 《{c.doc_title}》{c.section.replace(' > ', ' ')}（{c.source}）" for c in answer.citations]
    return "\n".join(lines)
