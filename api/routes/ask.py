"""``POST /v1/search`` and ``POST /v1/ask`` (JSON, or Server-Sent Events with ``"stream": true``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from api.chat_draft import DraftReply, draft_reply, split_text
from api.deps import ClientDep, RuntimeDep
from api.errors import status_for
from api.schemas import AskRequest, AskResponse, SearchRequest, SearchResponse
from api.service import answer_stream, check_question, guard_stream, prepare_turn, record_turn, sse
from assistant.errors import AssistantError
from assistant.pipeline import StreamEvent
from assistant.schema import answer_to_json, search_to_json

logger = logging.getLogger("api")
router = APIRouter(prefix="/v1", tags=["ask"], dependencies=[ClientDep])

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@router.post("/search", response_model=SearchResponse)
def search(body: SearchRequest, runtime: RuntimeDep) -> dict:
    """The articles that best match a query (hybrid BM25 + dense retrieval), verbatim."""
    query = check_question(body.query, runtime.settings.max_question_chars)
    with runtime.gate.read():
        hits = runtime.assistant.search(query, k=body.k, role=body.role)
    return search_to_json(query, hits)


@router.post(
    "/ask",
    response_model=AskResponse,
    response_model_exclude_none=True,
    responses={200: {"content": {"text/event-stream": {}}, "description": "JSON, or SSE when `stream` is true"}},
)
def ask(body: AskRequest, request: Request, runtime: RuntimeDep):
    """Answer from the policy texts with exact citations.

    With ``"stream": true`` the answer arrives as Server-Sent Events: ``event: delta`` with ``{"text"}``
    pieces as they are produced, then one ``event: final`` carrying the full JSON answer (citations).
    A request for a 述职报告 draft is answered with the cited draft and a ``draft`` field with its download link.
    """
    question = check_question(body.question, runtime.settings.max_question_chars)
    drafted = draft_reply(runtime, question, role=body.role, mode=body.mode, session_id=body.session_id,
                          base_url=str(request.base_url))
    if drafted is not None:
        if body.stream:
            return StreamingResponse(_draft_events(drafted, body.session_id), media_type="text/event-stream", headers=SSE_HEADERS)
        return drafted.ask_json(body.session_id)
    turn = prepare_turn(runtime, question, role=body.role, mode=body.mode, session_id=body.session_id)
    if body.stream:
        events = answer_stream(runtime, turn, body.mode)
        return StreamingResponse(_sse_events(events, body.session_id), media_type="text/event-stream", headers=SSE_HEADERS)
    with runtime.gate.read():
        answer = runtime.assistant.ask(turn.query, role=turn.role, mode=body.mode)
    record_turn(runtime, turn, answer)
    return {**answer_to_json(answer), "session_id": body.session_id}


def _draft_events(drafted: DraftReply, session_id: str | None) -> Iterator[str]:
    """A draft reply as SSE: the text in ``delta`` pieces, then ``final`` with the answer and ``draft``."""
    for piece in split_text(drafted.answer.answer):
        yield sse({"text": piece}, event="delta")
    yield sse(drafted.ask_json(session_id), event="final")


def _sse_events(events: Iterator[StreamEvent], session_id: str | None) -> Iterator[str]:
    def chunks() -> Iterator[str]:
        for kind, value in events:
            if kind == "delta":
                yield sse({"text": value}, event="delta")
            else:
                final = answer_to_json(value)
                if session_id:
                    final["session_id"] = session_id
                yield sse(final, event="final")

    def on_error(exc: Exception) -> str:
        if isinstance(exc, AssistantError):
            return sse({"error": str(exc), "status": status_for(exc)}, event="error")
        logger.exception("streaming answer failed", exc_info=exc)
        return sse({"error": "internal error; the server log has the details", "status": 500}, event="error")

    return guard_stream(chunks(), on_error)

