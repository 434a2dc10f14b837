"""FastAPI routes of the WeCom channels. Authenticated by WeCom's signatures, not by API keys.

* ``GET/POST /wecom/app/callback`` — self-built app (自建应用): URL verification; messages acked at once with an
  empty 200 and answered through ``message/send``.
* ``GET/POST /wecom/aibot/callback`` — 智能机器人 (API mode): URL verification; ``stream`` replies.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from api.wecom.aibot import AiBotChannel
from api.wecom.app_channel import AppChannel
from api.wecom.common import CallbackRejected, Dispatcher
from api.wecom.dialog import Dialog
from api.wecom.roles import RoleBook
from api.wecom.store import STORE_FILE, WeComStore
from assistant.config import Settings
from assistant.errors import KnowledgeBaseError

if TYPE_CHECKING:
    from api.deps import Runtime
    from assistant.pipeline import Assistant, StreamEvent
    from assistant.types import Answer

__all__ = ["RuntimeAssistant", "create_wecom_router", "runtime_assistant"]

log = logging.getLogger(__name__)

_Param = Annotated[str | None, Query()]


def _rejected(exc: CallbackRejected) -> JSONResponse:
    return JSONResponse({"detail": exc.detail}, status_code=exc.status)


def create_wecom_router(
    settings: Settings, get_assistant: Callable[[], Assistant], *, dispatcher: Dispatcher | None = None
) -> APIRouter:
    """The WeCom callback routes.

    Args:
        settings: ``DUTY_WECOM_*`` settings; a channel whose settings are missing answers 404 naming them.
        get_assistant: Returns the shared Assistant; called from worker threads when a question arrives.
        dispatcher: The worker pool that answers after the acknowledgement (default: two threads).

    Returns:
        A router to include in the app. Its lifespan stops the reply workers on shutdown.
    """
    store = WeComStore(settings.kb / STORE_FILE)
    dialog = Dialog(
        get_assistant,
        RoleBook(store, settings.wecom_roles_file),
        max_question_chars=settings.max_question_chars,
    )
    dispatcher = dispatcher if dispatcher is not None else Dispatcher()
    app_channel = AppChannel(settings, dialog, dispatcher)
    bot_channel = AiBotChannel(settings, dialog, dispatcher, store)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        dispatcher.shutdown(wait=False)
        app_channel.close()

    router = APIRouter(prefix="/wecom", tags=["wecom"], lifespan=lifespan)

    @router.get("/app/callback", response_class=PlainTextResponse)
    async def app_verify(
        msg_signature: _Param = None, timestamp: _Param = None, nonce: _Param = None, echostr: _Param = None
    ) -> Response:
        """URL verification (WeCom console → 接收消息 → 设置API接收 → 保存)."""
        try:
            plain = app_channel.verify_url(
                msg_signature=msg_signature, timestamp=timestamp, nonce=nonce, echostr=echostr
            )
        except CallbackRejected as exc:
            return _rejected(exc)
        return PlainTextResponse(plain)  # verbatim: no quotes, no newline

    @router.post("/app/callback")
    async def app_receive(
        request: Request, msg_signature: _Param = None, timestamp: _Param = None, nonce: _Param = None
    ) -> Response:
        """A member's message or an event; acknowledged with an empty 200 before any answering starts."""
        body = await request.body()
        try:
            app_channel.receive(msg_signature=msg_signature, timestamp=timestamp, nonce=nonce, body=body)
        except CallbackRejected as exc:
            return _rejected(exc)
        return Response(status_code=200)

    @router.get("/aibot/callback", response_class=PlainTextResponse)
    async def aibot_verify(
        msg_signature: _Param = None, timestamp: _Param = None, nonce: _Param = None, echostr: _Param = None
    ) -> Response:
        """URL verification for the AI bot (API mode)."""
        try:
            plain = bot_channel.verify_url(
                msg_signature=msg_signature, timestamp=timestamp, nonce=nonce, echostr=echostr
            )
        except CallbackRejected as exc:
            return _rejected(exc)
        return PlainTextResponse(plain)

    @router.post("/aibot/callback")
    async def aibot_receive(
        request: Request, msg_signature: _Param = None, timestamp: _Param = None, nonce: _Param = None
    ) -> Response:
        """A message, stream refresh or event; answered with an encrypted JSON reply (or an empty 200)."""
        body = await request.body()
        try:
            reply = await run_in_threadpool(
                bot_channel.receive, msg_signature=msg_signature, timestamp=timestamp, nonce=nonce, body=body
            )
        except CallbackRejected as exc:
            return _rejected(exc)
        if reply is None:
            return Response(status_code=200)
        return JSONResponse(reply)

    return router


class RuntimeAssistant:
    """The server's running assistant, used under the knowledge-base read gate like the ``/v1`` routes, so an
    answer never sees a half-swapped index while documents are being re-ingested."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app

    def _runtime(self) -> Runtime:
        runtime = getattr(self._app.state, "runtime", None)
        if runtime is None:
            raise KnowledgeBaseError("the assistant is still starting; try again in a moment")
        return runtime

    def ask(self, question: str, *, role: str | None = None, mode: str | None = None) -> Answer:
        runtime = self._runtime()
        with runtime.gate.read():
            return runtime.assistant.ask(question, role=role, mode=mode)

    def ask_stream(
        self, question: str, *, role: str | None = None, mode: str | None = None
    ) -> Iterator[StreamEvent]:
        runtime = self._runtime()
        # Retrieval happens while the first event is produced; an LLM may stream on without the gate.
        with runtime.gate.read():
            events = runtime.assistant.ask_stream(question, role=role, mode=mode)
            first = next(events, None)
        if first is not None:
            yield first
        yield from events


def runtime_assistant(app: FastAPI) -> Callable[[], Assistant]:
    """``get_assistant`` for :func:`create_wecom_router` inside ``api.app.create_app``."""
    return lambda: RuntimeAssistant(app)  # type: ignore[return-value]
