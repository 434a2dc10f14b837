"""create_app and start-up: nothing heavy at creation, the corpus on first start, health, docs, the page."""

from __future__ import annotations

import threading

from api.deps import KBGate
from assistant.chat import SessionStore
from assistant.types import Answer
from tests.api.conftest import api_settings, local_client
from tests.conftest import CORPUS


def test_create_app_builds_nothing_until_start(tmp_path):
    kb = tmp_path / "kb"
    client = local_client(api_settings(kb))
    assert not kb.exists()  # no knowledge base opened, no folder created
    with client:
        assert kb.is_dir()


def test_first_start_with_an_empty_kb_ingests_the_bundled_corpus(tmp_path):
    with local_client(api_settings(tmp_path / "kb")) as client:
        health = client.get("/healthz").json()
        sources = {d["source"] for d in client.get("/v1/documents").json()["documents"]}
    assert health["status"] == "ok" and health["documents"] == 3 and health["chunks"] > 10
    assert health["embedder"].startswith("fake/")
    assert sources == {p.name for p in CORPUS.glob("*.txt")}
    assert (tmp_path / "kb" / "sessions.sqlite").is_file()


def test_openapi_lists_the_contract_endpoints(small_client):
    paths = small_client.get("/openapi.json").json()["paths"]
    for path in ("/v1/search", "/v1/ask", "/v1/documents", "/v1/chat/completions", "/v1/models", "/healthz", "/v1/chunks/{chunk_id}"):
        assert path in paths
    assert small_client.get("/docs").status_code == 200


def test_the_page_and_its_assets_are_local_and_locked_down(small_client):
    page = small_client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "学校安全" in page.text and 'id="role"' in page.text
    assert "http://" not in page.text and "https://" not in page.text  # no CDN
    assert "script-src 'self'" in page.headers["content-security-policy"]
    for asset in ("/static/app.js", "/static/app.css"):
        response = small_client.get(asset)
        assert response.status_code == 200 and "//cdn" not in response.text
    assert "innerHTML" not in small_client.get("/static/app.js").text


def test_the_gate_keeps_writers_out_while_reading():
    gate = KBGate()
    wrote = threading.Event()

    def writer():
        with gate.write():
            wrote.set()

    with gate.read():
        thread = threading.Thread(target=writer)
        thread.start()
        assert not wrote.wait(0.2)
    thread.join(5)
    assert wrote.is_set()


def test_session_store_keeps_recent_turns_and_expires_idle_sessions(tmp_path):
    store = SessionStore(tmp_path / "s.sqlite", max_turns=3)
    session_id = store.create("校长")
    for i in range(5):
        store.record(session_id, f"问{i}", f"问题{i}", Answer(f"问题{i}", "答", True, "extractive"))
    conversation = store.load(session_id)
    assert conversation.role == "校长"
    assert [t.question for t in conversation.turns] == ["问2", "问3", "问4"]
    assert store.load("missing-session") is None

    expiring = SessionStore(tmp_path / "s.sqlite", keep_days=-1)  # everything counts as idle
    fresh = expiring.create()
    assert expiring.load(session_id) is None and expiring.load(fresh) is not None
