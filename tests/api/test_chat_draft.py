"""Chat requests for a 述职报告 draft: /v1/ask (JSON and SSE), /v1/chat/completions (TestClient and the
``openai`` client against a real server), and GET /v1/drafts/{id}.docx."""

from __future__ import annotations

import io
import json
import os
import shutil
import time
from pathlib import Path

import httpx
import pytest
from docx import Document

from assistant.draft.store import DraftStore
from tests.api.conftest import api_settings, local_client
from tests.test_draft import FACTS_BY_SECTION, FACTS_FILE, HEADINGS

MODEL = "duty-assistant"
ALL_FACTS = [fact for facts in FACTS_BY_SECTION.values() for fact in facts]
FULL_REQUEST = "帮我写2026年述职报告：\n" + FACTS_FILE.read_text(encoding="utf-8")
SECTION_REQUEST = "帮我写述职报告的履职情况部分，我们今年加固了三所幼儿园园舍，增设监控头20个。"


@pytest.fixture(scope="module")
def draft_kb(laws_kb_dir, tmp_path_factory) -> Path:
    """A copy of the 23-document knowledge base: chat drafts are written under <kb>/drafts."""
    kb = tmp_path_factory.mktemp("chat-draft") / "kb"
    shutil.copytree(laws_kb_dir, kb, ignore=shutil.ignore_patterns("drafts"))
    return kb


@pytest.fixture(scope="module")
def client(draft_kb):
    with local_client(api_settings(draft_kb)) as client:
        yield client


def ask(client, question, **extra):
    response = client.post("/v1/ask", json={"question": question, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def assert_exact_citations(client, citations):
    assert citations
    for c in citations:
        chunk = client.get(f"/v1/chunks/{c['chunk_id']}").json()
        text = client.get(f"/v1/documents/{chunk['doc_id']}/text").json()["text"]
        assert text[c["start"] : c["end"]] == c["quote"]


def download_path(url: str) -> str:
    path = httpx.URL(url).path
    assert path.startswith("/v1/drafts/") and path.endswith(".docx")
    return path


def docx_text(data: bytes) -> str:
    return "\n".join(p.text for p in Document(io.BytesIO(data)).paragraphs)


def test_a_chat_request_for_a_report_gets_the_cited_draft_and_a_working_download(client):
    body = ask(client, FULL_REQUEST, role="校长")
    answer, draft = body["answer"], body["draft"]
    assert [s["heading"] for s in draft["sections"]] == HEADINGS
    positions = [answer.index(f"## {h}") for h in HEADINGS]
    assert positions == sorted(positions)
    assert all(fact in answer for fact in ALL_FACTS)
    assert draft["year"] == 2026 and draft["role"] == "校长" and draft["unit"] == "（请补充单位名称）"
    assert "（请补充单位名称）" in draft["title"] and any("单位" in n for n in body["notices"])
    assert draft["download_url"] in answer and body["grounded"] is True
    assert_exact_citations(client, body["citations"])
    for c in body["citations"]:
        assert f"[{c['n']}]" in answer

    response = client.get(download_path(draft["download_url"]))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats-officedocument.wordprocessingml")
    assert "attachment" in response.headers["content-disposition"]
    text = docx_text(response.content)
    assert all(fact in text for fact in ALL_FACTS)
    assert all(h in text for h in HEADINGS)


def test_a_request_for_one_section_drafts_only_that_section(client):
    body = ask(client, SECTION_REQUEST, role="分管副校长")
    assert [s["heading"] for s in body["draft"]["sections"]] == ["一、履职基本情况"]
    assert "二、主要工作与成效" not in body["answer"]
    for fact in ("我们今年加固了三所幼儿园园舍", "增设监控头20个"):
        assert fact in body["answer"]
    assert body["draft"]["role"] == "分管副校长"
    assert_exact_citations(client, body["citations"])


def test_role_and_unit_come_from_the_message_or_the_session(client):
    named = ask(client, "请帮我起草述职报告，我是某某镇中心校分管副校长，今年组织了两次消防演练。")
    assert named["draft"]["unit"] == "某某镇中心校" and named["draft"]["role"] == "分管副校长"
    assert "今年组织了两次消防演练" in named["answer"]
    session = client.post("/v1/sessions", json={"role": "班主任"}).json()["session_id"]
    body = ask(client, "帮我写述职报告，单位：城关小学，今年开展了防溺水教育。", session_id=session)
    assert body["draft"]["role"] == "班主任" and body["draft"]["unit"] == "城关小学" and body["session_id"] == session
    turns = client.get(f"/v1/sessions/{session}").json()["turns"]
    assert turns[-1]["question"].startswith("帮我写述职报告")


def test_ordinary_questions_are_still_answered(client):
    body = ask(client, "校车驾驶人需要具备什么条件？")
    assert "draft" not in body and body["grounded"] is True


def test_the_streamed_answer_carries_the_draft(client):
    with client.stream("POST", "/v1/ask", json={"question": SECTION_REQUEST, "role": "校长", "stream": True}) as response:
        assert response.status_code == 200
        raw = "".join(response.iter_text())
    events = [block for block in raw.split("\n\n") if block.strip()]
    deltas = [json.loads(e.split("data: ", 1)[1])["text"] for e in events if e.startswith("event: delta")]
    (final,) = [json.loads(e.split("data: ", 1)[1]) for e in events if e.startswith("event: final")]
    assert "".join(deltas) == final["answer"]
    assert final["draft"]["download_url"] in final["answer"]
    assert client.get(download_path(final["draft"]["download_url"])).status_code == 200


def test_chat_completions_return_the_draft_with_its_link(client):
    messages = [{"role": "system", "content": "角色：校长"}, {"role": "user", "content": FULL_REQUEST}]
    body = client.post("/v1/chat/completions", json={"model": MODEL, "messages": messages}).json()
    content = body["choices"][0]["message"]["content"]
    assert all(fact in content for fact in ALL_FACTS) and all(h in content for h in HEADINGS)
    assert body["draft"]["download_url"] in content and body["draft"]["title"]
    assert_exact_citations(client, body["citations"])

    chunks = []
    with client.stream("POST", "/v1/chat/completions", json={"model": MODEL, "messages": messages, "stream": True,
                                                              "stream_options": {"include_usage": True}}) as response:
        for line in response.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                chunks.append(json.loads(line[6:]))
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    (stop,) = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"] == "stop"]
    assert text.endswith(stop["draft"]["download_url"] + "（7天内有效）")
    assert chunks[-1]["usage"]["completion_tokens"] == len(text)


def test_unknown_malformed_and_expired_draft_ids_are_404(client, draft_kb):
    for draft_id in ("A" * 32, "short", "..%2F..%2Fsessions.sqlite", "A" * 31 + "!"):
        assert client.get(f"/v1/drafts/{draft_id}.docx").status_code == 404
    url = ask(client, SECTION_REQUEST, role="校长")["draft"]["download_url"]
    path = download_path(url)
    stored = draft_kb / "drafts" / Path(path).name
    assert stored.exists() and len(Path(path).stem) == 32
    old = time.time() - 8 * 24 * 3600
    os.utime(stored, (old, old))
    assert client.get(path).status_code == 404


def test_the_store_removes_old_and_surplus_drafts(tmp_path):
    store = DraftStore(tmp_path / "drafts", max_files=3)
    ids = [store.save(b"x") for _ in range(5)]
    assert len(set(ids)) == 5
    assert len(list((tmp_path / "drafts").glob("*.docx"))) <= 3
    assert store.path(ids[-1]) is not None and store.path(ids[0]) is None


def test_drafts_need_the_api_key_when_keys_are_set(draft_kb):
    settings = api_settings(draft_kb, api_keys="reader-key")
    with local_client(settings, client=("10.1.2.3", 40000)) as remote:
        auth = {"Authorization": "Bearer reader-key"}
        assert remote.post("/v1/ask", json={"question": SECTION_REQUEST}).status_code == 401
        body = remote.post("/v1/ask", json={"question": SECTION_REQUEST, "role": "校长"}, headers=auth).json()
        path = download_path(body["draft"]["download_url"])
        assert remote.get(path).status_code == 401
        assert remote.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert remote.get(path, headers=auth).status_code == 200


def test_the_openai_client_gets_the_draft_and_its_link(live_server):
    from openai import OpenAI

    client = OpenAI(base_url=f"{live_server.url}/v1", api_key="unused")
    completion = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": FULL_REQUEST}], user="校长")
    content = completion.choices[0].message.content
    draft = completion.model_extra["draft"]
    assert all(fact in content for fact in ALL_FACTS) and draft["download_url"] in content
    assert draft["download_url"].startswith(live_server.url + "/v1/drafts/")
    stream = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": SECTION_REQUEST}], stream=True)
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert "一、履职基本情况" in streamed and "/v1/drafts/" in streamed
    response = httpx.get(draft["download_url"], timeout=30)
    assert response.status_code == 200 and "为各单位增设了监控头，并将监控联网" in docx_text(response.content)
