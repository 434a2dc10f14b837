"""OpenAI-compatible ``/v1/chat/completions`` and ``/v1/models``, for chat front-ends schools already run.

The asker's role comes from a system message (「角色：班主任」, or just 「班主任」) or the ``user`` field; the
last user message is the question and earlier user turns give follow-ups their context. Citations are
appended to the text and returned in an extra top-level ``citations`` field.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from api.chat_draft import DraftReply, draft_reply, split_text
from api.deps import ClientDep, RuntimeDep
from api.errors import ApiError
from api.routes.ask import SSE_HEADERS
from api.schemas import ChatCompletionRequest, ChatMessage
from api.service import (
    PreparedTurn,
    answer_stream,
    check_question,
    citations_text,
    guard_stream,
    prepare_turn,
    record_turn,
    sse,
)
from assistant.chat import Conversation, Turn
from assistant.errors import AssistantError
from assistant.pipeline import StreamEvent
from assistant.retrieve import ROLE_ALIASES, ROLE_TERMS, canonical_role
from assistant.schema import citation_to_json
from assistant.types import Answer

logger = logging.getLogger("api")
router = APIRouter(prefix="/v1", tags=["openai"], dependencies=[ClientDep])

MODEL_ID = "duty-assistant"
CREATED = 1735689600  # fixed: the model list must not change between calls
_ROLE_NAMES = sorted(set(ROLE_TERMS) | set(ROLE_ALIASES), key=len, reverse=True)
_ROLE_LABEL = re.compile(r"(?P<label>角色|身份|role)\s*(?:[:：=]|是|为)\s*(?P<value>[^\s，,。；;！!、]+)", re.IGNORECASE)


@router.get("/models")
def list_models() -> dict:
    """The one model this server offers."""
    return {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "created": CREATED, "owned_by": "duty-assistant"}]}


def message_text(message: ChatMessage) -> str:
    if message.content is None or isinstance(message.content, str):
        return message.content or ""
    kinds = {part.type for part in message.content}
    if kinds - {"text"}:
        raise ApiError(400, f"only text messages are supported, not {', '.join(sorted(kinds - {'text'}))}")
    return "".join(part.text or "" for part in message.content)


def role_from(messages: list[ChatMessage], user: str | None) -> str | None:
    """The asker's role: a labelled or bare role name in the latest system message, else the ``user`` field."""
    for message in reversed(messages):
        if message.role not in {"system", "developer"}:
            continue
        text = message_text(message).strip()
        labelled = _ROLE_LABEL.search(text)
        if labelled and (labelled["label"].lower() != "role" or _is_role(labelled["value"])):
            return canonical_role(labelled["value"])  # 「角色：保安」 names an unknown role: the caller's mistake, 400
        found = next((name for name in _ROLE_NAMES if name in text), None)
        if found:
            return canonical_role(found)
    if user:
        name = _ROLE_LABEL.sub(r"\g<value>", user).strip()
        if _is_role(name):
            return canonical_role(name)
    return None


def _is_role(name: str) -> bool:
    return name in ROLE_TERMS or name in ROLE_ALIASES


def history_of(messages: list[ChatMessage], role: str | None) -> Conversation:
    """A conversation rebuilt from the earlier user turns, so 「那班主任呢？」 follows the previous question."""
    conversation = Conversation(role=role)
    for message in messages:
        if message.role == "user":
            text = message_text(message).strip()
            if text:
                query, _ = conversation.resolve(text)
                conversation.turns.append(Turn(text, query, True))
    return conversation


@router.post("/chat/completions")
def chat_completions(body: ChatCompletionRequest, request: Request, runtime: RuntimeDep):
    """OpenAI chat completion (JSON, or ``data:`` chunks ending with ``data: [DONE]`` when streaming)."""
    if body.model != MODEL_ID:
        raise ApiError(404, f"the model {body.model!r} does not exist; use {MODEL_ID!r} (GET /v1/models)")
    last = body.messages[-1]
    if last.role != "user":
        raise ApiError(400, "the last message must come from the user and hold the question")
    question = check_question(message_text(last), runtime.settings.max_question_chars)
    role = role_from(body.messages, body.user)
    drafted = draft_reply(runtime, question, role=role, mode=body.mode, session_id=body.session_id, base_url=str(request.base_url))
    if drafted is not None:
        return _draft_completion(drafted, PreparedTurn(question, question, role, body.session_id), body)
    history = None if body.session_id else history_of(body.messages[:-1], role)
    turn = prepare_turn(runtime, question, role=role, mode=body.mode, session_id=body.session_id, history=history)
    completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    if body.stream:
        events = answer_stream(runtime, turn, body.mode)
        include_usage = bool((body.stream_options or {}).get("include_usage"))
        chunks = _completion_chunks(events, completion_id, turn, include_usage)
        return StreamingResponse(chunks, media_type="text/event-stream", headers=SSE_HEADERS)
    with runtime.gate.read():
        answer = runtime.assistant.ask(turn.query, role=turn.role, mode=body.mode)
    record_turn(runtime, turn, answer)
    content = answer.answer + citations_text(answer)
    return _completion(completion_id, content, turn, _extras(answer, turn))


def _completion(completion_id: str, content: str, turn: PreparedTurn, extras: dict) -> dict:
    """A non-streaming ``chat.completion`` object in OpenAI's shape, plus our extra fields."""
    return {
        "id": completion_id, "object": "chat.completion", "created": int(time.time()), "model": MODEL_ID,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": None},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": _usage(turn, content),
        "system_fingerprint": None,
        **extras,
    }


def _draft_completion(drafted: DraftReply, turn: PreparedTurn, body: ChatCompletionRequest):
    """A chat completion whose content is the cited draft and its download link; ``draft`` holds the link."""
    completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    content = drafted.answer.answer
    extras = {**_extras(drafted.answer, turn), "draft": drafted.draft}
    if body.stream:
        include_usage = bool((body.stream_options or {}).get("include_usage"))
        chunks = _draft_chunks(content, extras, completion_id, _usage(turn, content) if include_usage else None)
        return StreamingResponse(chunks, media_type="text/event-stream", headers=SSE_HEADERS)
    return _completion(completion_id, content, turn, extras)


def _draft_chunks(content: str, extras: dict, completion_id: str, usage: dict | None) -> Iterator[str]:
    head = {"id": completion_id, "object": "chat.completion.chunk", "created": int(time.time()), "model": MODEL_ID,
            "system_fingerprint": None}

    def chunk(delta: dict, finish: str | None = None, **extra: object) -> str:
        return sse({**head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}], **extra})

    yield chunk({"role": "assistant", "content": ""})
    for piece in split_text(content):
        yield chunk({"content": piece})
    yield chunk({}, "stop", **extras)
    if usage is not None:
        yield sse({**head, "choices": [], "usage": usage})
    yield sse("[DONE]")


def _extras(answer: Answer, turn: PreparedTurn) -> dict:
    return {"citations": [citation_to_json(c) for c in answer.citations], "grounded": answer.grounded, "question": turn.query}


def _usage(turn: PreparedTurn, content: str) -> dict:
    # Counted in characters: there is no tokenizer behind extractive answers.
    return {"prompt_tokens": len(turn.typed), "completion_tokens": len(content), "total_tokens": len(turn.typed) + len(content)}


def _completion_chunks(events: Iterator[StreamEvent], completion_id: str, turn: PreparedTurn, include_usage: bool) -> Iterator[str]:
    created = int(time.time())

    def chunk(delta: dict, finish: str | None = None, **extra: object) -> str:
        body = {
            "id": completion_id, "object": "chat.completion.chunk", "created": created, "model": MODEL_ID,
            "system_fingerprint": None, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            **extra,
        }
        return sse(body)

    def chunks() -> Iterator[str]:
        yield chunk({"role": "assistant", "content": ""})
        sent: list[str] = []
        for kind, value in events:
            if kind == "delta":
                sent.append(value)
                yield chunk({"content": value})
                continue
            tail = citations_text(value)
            if tail:
                sent.append(tail)
                yield chunk({"content": tail})
            yield chunk({}, "stop", **_extras(value, turn))
            if include_usage:
                usage = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": MODEL_ID,
                         "choices": [], "usage": _usage(turn, "".join(sent))}
                yield sse(usage)
        yield sse("[DONE]")

    def on_error(exc: Exception) -> str:
        message = str(exc) if isinstance(exc, AssistantError) else "internal error; the server log has the details"
        if not isinstance(exc, AssistantError):
            logger.exception("streaming chat completion failed", exc_info=exc)
        return sse({"error": {"message": message, "type": "server_error", "code": None}})

    return guard_stream(chunks(), on_error)
