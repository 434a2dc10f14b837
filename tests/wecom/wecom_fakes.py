"""Test doubles for the WeCom channels: a loopback fake of WeCom's server API, a uvicorn runner, callback
builders that encrypt and sign like WeCom does, and assistant wrappers that delay or record."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request

from api.wecom import crypto

# Official vectors of doc 90968 (spec §5.1); the AI-bot vectors D (§5.4) use the same token and key.
TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
CORP_ID = "wx5823bf96d3bd56c7"
AGENT_ID = "1000002"
SECRET = "s3cret-app-secret"


# ------------------------------------------------------------------------------------------ uvicorn


@contextlib.contextmanager
def serve_asgi(app: Any) -> Iterator[str]:
    """Serve ``app`` on a free loopback port in a background thread; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.005)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


# ------------------------------------------------------------------------------------ fake WeCom API


@dataclass
class SendRecord:
    access_token: str
    body: dict[str, Any]
    errcode: int


@dataclass
class FakeWeCom:
    """Records ``gettoken`` and ``message/send`` calls; can expire the current token or be busy once."""

    base_url: str = ""
    gettoken_calls: list[dict[str, str]] = field(default_factory=list)
    send_calls: list[SendRecord] = field(default_factory=list)
    expire_next_send: int = 0
    busy_next: int = 0
    tokens_issued: int = 0
    valid_token: str | None = None
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def reset(self) -> None:
        with self._cond:
            self.gettoken_calls.clear()
            self.send_calls.clear()
            self.expire_next_send = 0
            self.busy_next = 0

    @property
    def delivered(self) -> list[dict[str, Any]]:
        """Bodies of the messages WeCom accepted, in arrival order."""
        with self._cond:
            return [r.body for r in self.send_calls if r.errcode == 0]

    def wait_delivered(self, n: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        with self._cond:
            ok = self._cond.wait_for(lambda: sum(r.errcode == 0 for r in self.send_calls) >= n, timeout)
        assert ok, f"expected {n} delivered message(s), got {len(self.delivered)}"
        return self.delivered

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/cgi-bin/gettoken")
        def gettoken(corpid: str = "", corpsecret: str = "") -> dict[str, Any]:
            with self._cond:
                self.gettoken_calls.append({"corpid": corpid, "corpsecret": corpsecret})
                if corpid != CORP_ID or corpsecret != SECRET:
                    return {"errcode": 40001, "errmsg": "invalid credential"}
                self.tokens_issued += 1
                self.valid_token = f"TOKEN-{self.tokens_issued}"
                return {"errcode": 0, "errmsg": "ok", "access_token": self.valid_token, "expires_in": 7200}

        @app.post("/cgi-bin/message/send")
        async def send(request: Request, access_token: str = "") -> dict[str, Any]:
            body = json.loads(await request.body())
            with self._cond:
                if self.busy_next > 0:
                    self.busy_next -= 1
                    code, msg = -1, "system busy"
                elif self.expire_next_send > 0:
                    self.expire_next_send -= 1
                    self.valid_token = None  # WeCom invalidated the token early
                    code, msg = 42001, "access_token expired"
                elif access_token != self.valid_token:
                    code, msg = 40014, "invalid access_token"
                else:
                    code, msg = 0, "ok"
                self.send_calls.append(SendRecord(access_token, body, code))
                self._cond.notify_all()
            return {"errcode": code, "errmsg": msg, "msgid": f"m{len(self.send_calls)}"}

        return app


# ------------------------------------------------------------------------------------ callback builders


def text_xml(user: str, content: str, msg_id: str, *, cdata: bool = True, msg_type: str = "text") -> str:
    """The decrypted XML of a member's message (with or without CDATA sections)."""

    def val(v: str) -> str:
        return f"<![CDATA[{v}]]>" if cdata else v

    return (
        f"<xml><ToUserName>{val(CORP_ID)}</ToUserName>\n<FromUserName>{val(user)}</FromUserName>\n"
        f"<CreateTime>{int(time.time())}</CreateTime>\n<MsgType>{val(msg_type)}</MsgType>\n"
        f"<Content>{val(content)}</Content>\n<MsgId>{msg_id}</MsgId>\n<AgentID>{AGENT_ID}</AgentID>\n</xml>"
    )


def event_xml(user: str, event: str, create_time: int | None = None) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
        f"<CreateTime>{create_time or int(time.time())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[{event}]]></Event><AgentID>{AGENT_ID}</AgentID></xml>"
    )


@dataclass(frozen=True)
class SignedCallback:
    query: str
    body: bytes


def app_callback(
    plaintext: str, *, timestamp: str | None = None, nonce: str = "1372623149", receive_id: str = CORP_ID
) -> SignedCallback:
    """Encrypt and sign ``plaintext`` like WeCom does for a self-built app callback."""
    timestamp = timestamp or str(int(time.time()))
    enc = crypto.encrypt(AES_KEY, plaintext, receive_id=receive_id)
    sig = crypto.signature(TOKEN, timestamp, nonce, enc)
    body = (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{enc}]]></Encrypt>"
        f"<AgentID><![CDATA[{AGENT_ID}]]></AgentID></xml>"
    ).encode()
    query = urllib.parse.urlencode({"msg_signature": sig, "timestamp": timestamp, "nonce": nonce})
    return SignedCallback(query, body)


def bot_callback(
    message: dict[str, Any], *, timestamp: str | None = None, nonce: str = "987654321", receive_id: str = ""
) -> SignedCallback:
    """Encrypt and sign an AI-bot JSON callback."""
    timestamp = timestamp or str(int(time.time()))
    enc = crypto.encrypt(AES_KEY, json.dumps(message, ensure_ascii=False), receive_id=receive_id)
    sig = crypto.signature(TOKEN, timestamp, nonce, enc)
    query = urllib.parse.urlencode({"msg_signature": sig, "timestamp": timestamp, "nonce": nonce})
    return SignedCallback(query, json.dumps({"encrypt": enc}).encode())


def open_bot_reply(response: httpx.Response, *, nonce: str = "987654321") -> dict[str, Any]:
    """Verify and decrypt an AI-bot passive reply; returns its JSON payload."""
    assert response.status_code == 200, response.text
    envelope = response.json()
    assert envelope["nonce"] == nonce  # WeCom requires the callback URL's nonce
    crypto.check_signature(
        TOKEN, str(envelope["timestamp"]), envelope["nonce"], envelope["encrypt"], envelope["msgsignature"]
    )
    return json.loads(crypto.decrypt(AES_KEY, envelope["encrypt"], receive_id=""))


# ------------------------------------------------------------------------------------ assistant doubles


class GatedAssistant:
    """Wraps an Assistant; ``ask`` records its arguments and, while the gate is closed, waits for it.

    Waiting on an event instead of sleeping a fixed time keeps the tests fast and makes "the answer is still
    being computed" a fact rather than a race.
    """

    def __init__(self, inner: Any, *, gate: threading.Event | None = None) -> None:
        self.inner = inner
        self.gate = gate
        self.calls: list[tuple[str, str | None]] = []
        self.started = threading.Event()

    def _wait(self) -> None:
        if self.gate is not None:
            assert self.gate.wait(20), "gate never opened"

    def ask(self, question: str, *, role: str | None = None, mode: str | None = None) -> Any:
        self.calls.append((question, role))
        self.started.set()
        self._wait()
        return self.inner.ask(question, role=role, mode=mode)

    def ask_stream(
        self, question: str, *, role: str | None = None, mode: str | None = None
    ) -> Iterator[tuple[str, Any]]:
        """First line at once, the rest after the gate opens: lets a test see a partial snapshot."""
        self.calls.append((question, role))
        self.started.set()
        answer = self.inner.ask(question, role=role, mode=mode)
        lines = answer.answer.splitlines(keepends=True)
        yield ("delta", lines[0] if lines else "")
        self._wait()
        for line in lines[1:]:
            yield ("delta", line)
        yield ("final", answer)


class FixedAssistant:
    """Returns one prepared Answer for every question."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.calls: list[tuple[str, str | None]] = []

    def ask(self, question: str, *, role: str | None = None, mode: str | None = None) -> Any:
        self.calls.append((question, role))
        return self.answer

    def ask_stream(
        self, question: str, *, role: str | None = None, mode: str | None = None
    ) -> Iterator[tuple[str, Any]]:
        answer = self.ask(question, role=role, mode=mode)
        yield ("delta", answer.answer)
        yield ("final", answer)
