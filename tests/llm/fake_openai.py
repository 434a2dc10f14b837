"""A scripted OpenAI-compatible server (POST /v1/chat/completions, JSON and SSE) for LLM-mode tests.

Each request pops the next :class:`Reply` from the script and is recorded. An exhausted script answers
HTTP 500 with ``x-should-retry: false``, so an unexpected extra call shows up as a failure, not a hang.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

PASSAGE = re.compile(r'<passage n="(\d+)" title="([^"]*)" section="([^"]*)">\n(.*?)\n</passage>', re.S)


@dataclass
class Reply:
    content: str | Callable[[dict], str] = ""  # or a function of the request body
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    raw: str | None = None  # a non-streaming body sent as is (malformed responses)
    stream_raw: list[str] | None = None  # SSE lines sent as is
    hang: float = 0.0  # seconds to stall: before answering, or after ``hang_after`` stream chunks
    hang_after: int | None = None
    chunk_size: int = 3


@dataclass
class Recorded:
    body: dict
    headers: dict[str, str]

    @property
    def messages(self) -> list[dict]:
        return self.body["messages"]

    @property
    def user_prompt(self) -> str:
        return self.messages[-1]["content"]

    def passages(self) -> dict[int, tuple[str, str, str]]:
        """Passages numbered in the prompt: n → (title, section, text)."""
        return {int(n): (title, section, text) for n, title, section, text in PASSAGE.findall(self.user_prompt)}


class FakeOpenAI:
    def __init__(self) -> None:
        self.script: deque[Reply] = deque()
        self.requests: list[Recorded] = []
        self.url = ""
        self.app = self._build()

    def push(self, *replies: Reply) -> None:
        self.script.extend(replies)

    def reset(self) -> None:
        self.script.clear()
        self.requests.clear()

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def completions(request: Request) -> Response:
            body = await request.json()
            self.requests.append(Recorded(body, dict(request.headers)))
            if not self.script:
                return JSONResponse({"error": {"message": "script exhausted"}}, 500, {"x-should-retry": "false"})
            reply = self.script.popleft()
            if reply.hang and reply.hang_after is None:
                await asyncio.sleep(reply.hang)
            if reply.status != 200:
                return JSONResponse({"error": {"message": f"scripted {reply.status}", "type": "scripted"}}, reply.status, reply.headers)
            if reply.raw is not None:
                return Response(reply.raw, media_type="application/json")
            content = reply.content(body) if callable(reply.content) else reply.content
            if body.get("stream"):
                return StreamingResponse(_sse(reply, content, body["model"]), media_type="text/event-stream")
            return JSONResponse(_completion(content, body["model"]))

        return app

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> tuple[uvicorn.Server, threading.Thread]:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake OpenAI server did not start")
            time.sleep(0.01)
        return server, thread


def _completion(content: str, model: str) -> dict:
    return {
        "id": "chatcmpl-fake", "object": "chat.completion", "created": 1700000000, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def _chunk(model: str, delta: dict, finish: str | None = None) -> str:
    data = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1700000000, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


async def _sse(reply: Reply, content: str, model: str):
    if reply.stream_raw is not None:
        for line in reply.stream_raw:
            yield line
        return
    yield _chunk(model, {"role": "assistant", "content": ""})
    pieces = [content[i : i + reply.chunk_size] for i in range(0, len(content), reply.chunk_size)]
    for i, piece in enumerate(pieces):
        if reply.hang_after is not None and i == reply.hang_after:
            await asyncio.sleep(reply.hang)
            return
        yield _chunk(model, {"content": piece})
        await asyncio.sleep(0)
    yield _chunk(model, {}, "stop")
    yield "data: [DONE]\n\n"
