"""Server mode (DUTY_CHROMA_URL): a real ``chroma run`` on a loopback port, driven through HttpClient.

Needs ../shared (real law texts) and the ``chroma`` CLI that ships with the chromadb package.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from assistant.index import KnowledgeBase
from tests.conftest import law, make_assistant
from tests.processes import stop_process

pytestmark = pytest.mark.shared


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _chroma_cli() -> str:
    beside = Path(sys.executable).with_name("chroma")
    found = str(beside) if beside.exists() else shutil.which("chroma")
    if not found:
        pytest.fail("the `chroma` command is missing; it ships with the chromadb package (pip install -e .)")
    return found


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory) -> str:
    port = _free_port()
    data = tmp_path_factory.mktemp("chroma-server")
    log = (data / "server.log").open("w")
    proc = subprocess.Popen([_chroma_cli(), "run", "--path", str(data / "db"), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"chroma run did not come up: {(data / 'server.log').read_text(errors='replace')[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        stop_process(proc, timeout=10)
        log.close()


@pytest.mark.parametrize("exact_search_max", [60_000, 0], ids=["tables-read-from-server", "server-index"])
def test_ingest_search_ask_through_a_chroma_server(tmp_path, chroma_url, exact_search_max):
    assistant = make_assistant(tmp_path / "kb", chroma_url=chroma_url, exact_search_max=exact_search_max)
    try:
        report = assistant.ingest([law("校车安全管理条例"), law("未成年人保护法")])
        assert len(report.added) == 2
        assert not (tmp_path / "kb" / "chroma").exists()  # vectors live on the server, BM25 and manifest in the KB
        stored = assistant.kb._collection_handle().get(include=[])["ids"]
        assert sorted(stored) == sorted(assistant.kb.chunks)
        hits = assistant.search("校车驾驶人应当具备什么条件", k=5)
        assert hits and "校车" in hits[0].chunk.doc_title
        answer = assistant.ask("校车驾驶人应当具备哪些条件？", role="校长")
        assert answer.citations and any("校车" in c.doc_title for c in answer.citations)
    finally:
        assistant.close()
    # a fresh process view (another API worker) reads the same collections through the manifest's prefix
    again = make_assistant(tmp_path / "kb", chroma_url=chroma_url, exact_search_max=exact_search_max)
    try:
        assert again.kb.dense_search(again.embedder.embed_query("校车驾驶人"), 3)
        assert bool(again.kb._tables.get("duty_chunks")) == (exact_search_max > 0)
    finally:
        again.close()


def test_two_knowledge_bases_share_one_server_without_mixing(tmp_path, chroma_url):
    first = make_assistant(tmp_path / "a", chroma_url=chroma_url)
    second = make_assistant(tmp_path / "b", chroma_url=chroma_url)
    try:
        first.ingest([law("校车安全管理条例")])
        second.ingest([law("食品安全法")])
        names = {first.kb._collection_handle().name, second.kb._collection_handle().name}
        assert len(names) == 2
        assert set(first.kb._collection_handle().get(include=[])["ids"]) == set(first.kb.chunks)
        assert set(second.kb._collection_handle().get(include=[])["ids"]) == set(second.kb.chunks)
    finally:
        first.close()
        second.close()


def test_replaced_and_removed_documents_leave_no_stray_vectors_on_the_server(tmp_path, chroma_url):
    folder = tmp_path / "files"
    folder.mkdir()
    text = law("校车安全管理条例").read_text(encoding="utf-8")
    path = folder / "school-bus.md"
    path.write_text(text, encoding="utf-8")
    kb = KnowledgeBase(tmp_path / "kb", make_assistant(tmp_path / "unused").embedder, chroma_url=chroma_url)
    try:
        kb.ingest([path])
        path.write_text(text.replace("第一条", "第一条（修订）", 1) + "\n第九十九条 新增的条款。\n", encoding="utf-8")
        report = kb.ingest([path])
        assert report.updated == ["school-bus.md"]
        for name in ("duty_chunks", "duty_windows"):
            stored = {i.rsplit(":", 1)[0] for i in kb._collection_handle(name).get(include=[])["ids"]}
            assert stored == set(kb.chunks)
        kb.remove(["school-bus.md"])
        assert kb._collection_handle().count() == 0
    finally:
        kb.close()


def test_a_bad_server_url_is_a_clear_error(tmp_path):
    from assistant.errors import KnowledgeBaseError

    kb = KnowledgeBase(tmp_path / "kb", make_assistant(tmp_path / "unused").embedder, chroma_url=f"http://127.0.0.1:{_free_port()}")
    try:
        with pytest.raises(KnowledgeBaseError, match="Chroma server"):
            kb.ingest([law("校车安全管理条例")])
    finally:
        kb.close()


def test_rebuild_on_a_server_swaps_collections_and_drops_the_old_ones(tmp_path, chroma_url):
    import chromadb

    from assistant.embed import FakeEmbedder
    from assistant.index import rebuild_knowledge_base

    root = tmp_path / "kb"
    kb = KnowledgeBase(root, FakeEmbedder(), chroma_url=chroma_url)
    kb.ingest([law("校车安全管理条例")])
    old_name = kb._collection_handle().name
    kb.close()
    rebuild_knowledge_base(root, FakeEmbedder(), [law("食品安全法")], chroma_url=chroma_url)
    kb = KnowledgeBase(root, FakeEmbedder(), chroma_url=chroma_url)
    try:
        assert kb._collection_handle().name != old_name
        assert set(kb._collection_handle().get(include=[])["ids"]) == set(kb.chunks)
        assert [d.source for d in kb.documents()] == [law("食品安全法").name]
        port = chroma_url.rsplit(":", 1)[1]
        client = chromadb.HttpClient(host="127.0.0.1", port=int(port), settings=chromadb.Settings(anonymized_telemetry=False))
        assert old_name not in {c.name for c in client.list_collections()}
    finally:
        kb.close()
