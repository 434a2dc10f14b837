"""The FastAPI application: ``create_app(settings)`` wires routers; the assistant is built once at start-up.

Run it with ``duty serve`` (or ``uvicorn --factory api.app:create_app``). Nothing heavy happens at import
time: the embedder, the knowledge base and the session store are built in the lifespan, and on first start
with an empty knowledge base the bundled ``corpus/`` is ingested.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import Runtime
from api.errors import BodyLimit, install_error_handlers
from api.ratelimit import RateLimiter, limit_for
from api.routes import ask, documents, draft, health, openai_compat, sessions, web
from api.routes.web import STATIC_DIR
from api.uploads import MAX_FILES_PER_UPLOAD
from api.wecom.router import create_wecom_router, runtime_assistant
from assistant.chat import SessionStore
from assistant.config import Settings, get_settings
from assistant.pipeline import build_assistant, bundled_corpus_dir

logger = logging.getLogger("api")

JSON_BODY_LIMIT = 1024 * 1024
SESSIONS_FILE = "sessions.sqlite"
# The page loads nothing from elsewhere and runs no inline script: injected markup cannot execute.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def start_runtime(settings: Settings) -> Runtime:
    """Build the assistant (ingesting the bundled corpus into an empty knowledge base) and the session store."""
    assistant = build_assistant(settings)
    try:
        if assistant.kb.is_empty:
            corpus = settings.corpus_dir or bundled_corpus_dir()
            logger.info("知识库 %s 为空：正在从 %s 建立（首次启动）…", assistant.kb.root, corpus)
            report = assistant.ensure_corpus()
            if report is not None:
                logger.info("已导入 %d 个文件，%d 个片段，用时 %.1f 秒", len(report.added), report.chunks_embedded, report.seconds)
        sessions = SessionStore(assistant.kb.root / SESSIONS_FILE)
        assistant.warm_up()
    except BaseException:
        assistant.close()
        raise
    logger.info("知识库 %s：%d 个文件，%d 个片段，向量模型 %s", assistant.kb.root, len(assistant.kb.docs),
                len(assistant.kb.chunks), assistant.embedder.name)
    logger.info(auth_summary(settings))
    return Runtime(settings, assistant, sessions)


def auth_summary(settings: Settings) -> str:
    """One line for the start-up log and ``duty serve``: who will be served."""
    keys = len(settings.api_key_list) + len(settings.admin_key_list)
    if keys:
        return f"API keys configured ({keys}): /v1 requests need 'Authorization: Bearer <key>'"
    return ("no API keys configured (DUTY_API_KEYS): only clients on this machine (127.0.0.1 / ::1) are served; "
            "set DUTY_API_KEYS to let other computers in")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    runtime = await run_in_threadpool(start_runtime, app.state.settings)
    app.state.runtime = runtime
    try:
        yield
    finally:
        app.state.runtime = None
        runtime.close()


class SecurityHeaders:
    """nosniff everywhere; a strict Content-Security-Policy on the web page and its assets."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        page = scope["path"] == "/" or scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
                if page:
                    headers.setdefault("Content-Security-Policy", PAGE_CSP)
                    headers.setdefault("X-Frame-Options", "DENY")
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The application for ``settings`` (default: from the environment). Cheap: builds nothing heavy."""
    settings = settings or get_settings()
    app = FastAPI(
        title="学校安全一岗双责政策助手 API",
        description="只依据政策原文作答，逐条给出可核验的引用。See DESIGN §7 for the JSON shapes.",
        version="0.1.0",
        lifespan=lifespan,
        form_limits={"max_files": MAX_FILES_PER_UPLOAD, "max_fields": 8},
    )
    app.state.settings = settings
    app.state.runtime = None
    app.state.rate_limiter = RateLimiter(limit_for(settings))
    install_error_handlers(app)
    upload_limit = settings.max_upload_mb * 1024 * 1024 * MAX_FILES_PER_UPLOAD + JSON_BODY_LIMIT
    app.add_middleware(BodyLimit, default=JSON_BODY_LIMIT, by_path={"/v1/documents": upload_limit})
    app.add_middleware(SecurityHeaders)
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    if origins:
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"])
    app.include_router(health.router)
    app.include_router(ask.router)
    app.include_router(sessions.router)
    app.include_router(documents.router)
    app.include_router(openai_compat.router)
    app.include_router(draft.router)
    app.include_router(web.router)
    app.include_router(create_wecom_router(settings, runtime_assistant(app)))  # signed by WeCom, no API key
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
