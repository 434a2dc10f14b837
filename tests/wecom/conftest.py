"""Fixtures for the WeCom channel tests: a fake WeCom API on loopback and our callback app served by uvicorn."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.wecom.common import Dispatcher
from api.wecom.router import create_wecom_router
from assistant.config import Settings
from tests.wecom.wecom_fakes import AES_KEY, AGENT_ID, CORP_ID, SECRET, TOKEN, FakeWeCom, serve_asgi


@pytest.fixture(scope="session")
def fake_wecom_server() -> Iterator[FakeWeCom]:
    fake = FakeWeCom()
    with serve_asgi(fake.app()) as url:
        fake.base_url = url
        yield fake


@pytest.fixture
def fake_wecom(fake_wecom_server: FakeWeCom) -> FakeWeCom:
    """The loopback fake of qyapi.weixin.qq.com, with its records cleared."""
    fake_wecom_server.reset()
    return fake_wecom_server


def wecom_settings(kb: Path, api_base: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        kb=kb,
        embedder="fake",
        wecom_corp_id=CORP_ID,
        wecom_agent_id=AGENT_ID,
        wecom_secret=SECRET,
        wecom_token=TOKEN,
        wecom_aes_key=AES_KEY,
        wecom_bot_token=TOKEN,
        wecom_bot_aes_key=AES_KEY,
        wecom_api_base=api_base,
    )
    values.update(overrides)
    return Settings(_env_file=None, **values)


@dataclass
class WeComApp:
    base_url: str
    settings: Settings
    dispatcher: Dispatcher
    http: httpx.Client

    def post_app(self, callback: Any) -> httpx.Response:
        return self.http.post(f"/wecom/app/callback?{callback.query}", content=callback.body)

    def post_bot(self, callback: Any) -> httpx.Response:
        return self.http.post(f"/wecom/aibot/callback?{callback.query}", content=callback.body)

    def settle(self) -> None:
        """Wait until every queued answer has been produced and sent."""
        assert self.dispatcher.wait_idle(20), "background answers did not finish"


@pytest.fixture
def start_wecom(tmp_path: Path, fake_wecom: FakeWeCom) -> Iterator[Callable[..., WeComApp]]:
    """Start our WeCom routes (in a bare FastAPI app) on loopback for a given assistant and settings."""
    with contextlib.ExitStack() as stack:

        def start(assistant: Any, **overrides: Any) -> WeComApp:
            settings = wecom_settings(tmp_path / "kb", fake_wecom.base_url, **overrides)
            dispatcher = Dispatcher()
            app = FastAPI()
            app.include_router(create_wecom_router(settings, lambda: assistant, dispatcher=dispatcher))
            base = stack.enter_context(serve_asgi(app))
            http = stack.enter_context(httpx.Client(base_url=base, timeout=10))
            return WeComApp(base, settings, dispatcher, http)

        yield start


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """An event that a gated assistant waits for; always opened at teardown so no worker stays blocked."""
    event = threading.Event()
    yield event
    event.set()
