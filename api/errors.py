"""One place that turns failures into JSON error responses: ``{"error": "what went wrong and what to do"}``.

The OpenAI-compatible routes answer in OpenAI's own error shape, ``{"error": {"message", "type", "code"}}``,
so that chat front-ends and the official client show the message.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.errors import (
    AssistantError,
    ConfigError,
    CorpusError,
    EmbedderMismatchError,
    KnowledgeBaseError,
    LLMError,
    RetrievalError,
)

logger = logging.getLogger("api")

# Most specific first. Library errors raised while serving a request are the caller's to fix (4xx), except
# a broken knowledge base (503) and a failing language model upstream (502).
STATUS_BY_ERROR: tuple[tuple[type[AssistantError], int], ...] = (
    (EmbedderMismatchError, 503),
    (KnowledgeBaseError, 503),
    (RetrievalError, 400),
    (CorpusError, 400),
    (ConfigError, 400),
    (LLMError, 502),
)
OPENAI_PATHS = ("/v1/chat/", "/v1/models")


class ApiError(Exception):
    """An HTTP-level refusal (auth, unknown id, bad upload) with a message for the caller."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def status_for(exc: AssistantError) -> int:
    return next((status for kind, status in STATUS_BY_ERROR if isinstance(exc, kind)), 400)


def error_response(request: Request, status: int, message: str, *, headers: dict[str, str] | None = None) -> JSONResponse:
    if request.url.path.startswith(OPENAI_PATHS):
        kind = "invalid_request_error" if status < 500 else "server_error"
        body: dict = {"error": {"message": message, "type": kind, "code": status, "param": None}}
    else:
        body = {"error": message}
    return JSONResponse(body, status_code=status, headers=headers)


def validation_message(exc: RequestValidationError) -> str:
    """``question: String should have at least 1 character; k: ...`` — locations without the ``body`` prefix."""
    parts = []
    for error in exc.errors()[:5]:
        loc = [str(p) for p in error.get("loc", ())]
        if loc and loc[0] in {"body", "query", "path", "header", "cookie"}:
            loc = loc[1:]
        parts.append(f"{'.'.join(loc) or 'request'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AssistantError)
    async def _assistant_error(request: Request, exc: AssistantError) -> JSONResponse:
        return error_response(request, status_for(exc), str(exc))

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(request, exc.status, exc.message, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(request, 422, validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(request, exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(request, 500, "internal error; the server log has the details")


class BodyTooLarge(StarletteHTTPException):
    """Raised while reading a request body past its limit. An HTTPException, so that FastAPI's body
    parsing lets it through unchanged and the handler above renders it as JSON."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {_size(limit)}; send less (uploads: DUTY_MAX_UPLOAD_MB per file)")


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MB" if n >= 1024 * 1024 else f"{n} bytes"


class BodyLimit:
    """Refuse request bodies over a size limit with a JSON 413: at once when Content-Length says so, else
    while the body streams in. Paths in ``by_path`` (uploads) get their own limit."""

    def __init__(self, app: ASGIApp, *, default: int, by_path: dict[str, int]) -> None:
        self.app = app
        self.default = default
        self.by_path = by_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.by_path.get(scope["path"].rstrip("/"), self.default)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            response = error_response(Request(scope), 413, str(BodyTooLarge(limit).detail))
            await response(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited, send)

