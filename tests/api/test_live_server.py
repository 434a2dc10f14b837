"""A real ``duty serve`` process on a loopback port, driven by the official ``openai`` client."""

from __future__ import annotations

import httpx
import openai
import pytest

QUESTION = "校车驾驶人需要具备什么条件？"


@pytest.fixture(scope="module")
def client(live_server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live_server.url}/v1", api_key="unused-on-loopback", max_retries=0, timeout=60)


def test_serve_prints_the_url_and_the_auth_mode(live_server):
    output = live_server.output()
    assert f"网页对话：{live_server.url}/" in output
    assert "未配置 API 密钥" in output
    assert "only clients on this machine" in output  # the start-up log line


def test_models_through_the_openai_client(client):
    assert [m.id for m in client.models.list()] == ["duty-assistant"]


def test_chat_completion_through_the_openai_client(client):
    completion = client.chat.completions.create(
        model="duty-assistant",
        messages=[{"role": "system", "content": "角色：校长"}, {"role": "user", "content": QUESTION}],
    )
    content = completion.choices[0].message.content
    citations = completion.model_extra["citations"]
    assert content.startswith("作为校长")
    assert citations and all(c["quote"] in content for c in citations)
    assert any("校车安全管理条例" in c["doc_title"] for c in citations)
    assert f"[1] 《{citations[0]['doc_title']}》" in content


def test_streaming_chat_completion_through_the_openai_client(client):
    stream = client.chat.completions.create(
        model="duty-assistant", messages=[{"role": "user", "content": QUESTION}], stream=True, user="班主任",
    )
    pieces, citations = [], None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        if chunk.model_extra.get("citations"):
            citations = chunk.model_extra["citations"]
    text = "".join(pieces)
    assert len(pieces) > 2
    assert text.startswith("作为班主任") and "引用：" in text
    assert citations and all(c["quote"] in text for c in citations)


def test_errors_reach_the_openai_client_as_exceptions(client):
    with pytest.raises(openai.NotFoundError, match="duty-assistant"):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": QUESTION}])
    with pytest.raises(openai.BadRequestError, match="last message"):
        client.chat.completions.create(model="duty-assistant", messages=[{"role": "assistant", "content": "好"}])


def test_ask_streams_server_sent_events_over_the_wire(live_server):
    with httpx.stream("POST", f"{live_server.url}/v1/ask", json={"question": QUESTION, "stream": True}, timeout=60) as response:
        assert response.status_code == 200
        events = [line.removeprefix("event: ") for line in response.iter_lines() if line.startswith("event: ")]
    assert events[-1] == "final" and events.count("delta") >= 2


def test_questions_keep_being_answered_while_documents_change(live_server):
    from concurrent.futures import ThreadPoolExecutor

    rules = "# 校园巡逻犬管理规定\n\n第一条 巡逻犬训导员应当每日检查犬只的疫苗记录。\n".encode()

    def ask(i: int) -> int:
        body = {"question": QUESTION if i % 2 else "巡逻犬训导员每天检查什么？", "stream": bool(i % 3 == 0)}
        return httpx.post(f"{live_server.url}/v1/ask", json=body, timeout=60).status_code

    def change() -> list[int]:
        added = httpx.post(f"{live_server.url}/v1/documents", files={"file": ("校园巡逻犬管理规定.md", rules)}, timeout=60)
        removed = httpx.delete(f"{live_server.url}/v1/documents/校园巡逻犬管理规定.md", timeout=60)
        return [added.status_code, removed.status_code]

    with ThreadPoolExecutor(max_workers=6) as pool:
        asks = [pool.submit(ask, i) for i in range(24)]
        changes = pool.submit(change)
        statuses = [f.result() for f in asks]
    assert changes.result() == [201, 200]
    assert statuses == [200] * 24


def test_an_idle_keep_alive_connection_outlives_client_pools(live_server):
    """Clients drop idle pooled connections after 5 s (httpx's default); the server must not close them at the same
    moment, or a reused connection is reset (seen under `make loadtest`). A connection idle for 6 s still serves."""
    import socket
    import time
    from urllib.parse import urlsplit

    from assistant.cli import KEEP_ALIVE_S

    assert KEEP_ALIVE_S > 6
    address = urlsplit(live_server.url)
    request = f"GET /healthz HTTP/1.1\r\nHost: {address.netloc}\r\nConnection: keep-alive\r\n\r\n".encode()
    def read_response(sock: socket.socket) -> bytes:
        """One whole response (headers, then Content-Length bytes of body); b"" if the server closed the connection."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        length = int(next(line.split(b":", 1)[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")))
        while len(body) < length:
            body += sock.recv(65536)
        return head

    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        for _ in range(2):
            sock.sendall(request)
            head = read_response(sock)
            assert head.startswith(b"HTTP/1.1 200"), head[:100]
            time.sleep(6)
