"""``kill -9`` of the server in the middle of an upload: after a restart the knowledge base answers as before
the upload or as after it — never with part of it — and sending the upload again completes it."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time

import httpx
import pytest

from eval.loadtest import serve
from tests.conftest import LAWS, make_assistant

pytestmark = pytest.mark.shared

QUERIES = ("校车驾驶人", "食品安全", "学生欺凌")


def _snapshot(kb, **overrides) -> tuple:
    assistant = make_assistant(kb, **overrides)
    try:
        docs = sorted((d.source, d.sha256, d.chunks) for d in assistant.kb.documents())
        for d in assistant.kb.documents():
            assert len(assistant.kb.chunks_of(d.doc_id)) == d.chunks, d.source
        hits = [[h.chunk.chunk_id for h in assistant.search(q, k=5)] for q in QUERIES]
        return docs, hits
    finally:
        assistant.close()


def test_killed_during_upload_the_kb_is_before_or_after_and_a_retry_completes(corpus_kb_template, tmp_path):
    uploads = [(p.name, p.read_bytes()) for p in sorted(LAWS.glob("*.md"))[:6]]
    reference = tmp_path / "reference"
    shutil.copytree(corpus_kb_template, reference)
    before = _snapshot(reference)
    outcomes = []
    for attempt, delay in enumerate((0.05, 0.3, 0.8, 1.5)):
        kb = tmp_path / f"kb{attempt}"
        shutil.copytree(corpus_kb_template, kb)
        with serve(kb, embedder="fake", startup_timeout=120) as server:
            # serve() works on a copy; point it at that copy for the check below
            served_kb = next(server.log.parent.glob("kb"))

            def upload(url: str = server.url) -> None:
                try:
                    httpx.post(f"{url}/v1/documents", files=[("file", item) for item in uploads], timeout=60)
                except httpx.HTTPError:
                    pass  # the server was killed under it

            sender = threading.Thread(target=upload)
            sender.start()
            time.sleep(delay)
            os.kill(server.pid, signal.SIGKILL)
            sender.join(timeout=60)
            snapshot_dir = tmp_path / f"after{attempt}"
            shutil.copytree(served_kb, snapshot_dir, ignore=shutil.ignore_patterns(".lock"))
        after = _snapshot(snapshot_dir)
        if after == before:
            outcomes.append("before")
        else:
            outcomes.append("after")
            assert {name for name, _ in uploads} <= {source for source, _, _ in after[0]}
            assert len(after[0]) == len(before[0]) + len(uploads)
        # A restart on the crashed KB serves, and sending the upload again completes it.
        with serve(snapshot_dir, embedder="fake", startup_timeout=120) as server:
            response = httpx.post(f"{server.url}/v1/documents", files=[("file", item) for item in uploads], timeout=120)
            assert response.status_code in (200, 201), response.text
            sources = {d["source"] for d in response.json()["documents"]}
            assert {name for name, _ in uploads} <= sources and len(sources) == len(before[0]) + len(uploads)
    assert "before" in outcomes, outcomes


@pytest.mark.parametrize("exact_search_max", [0, 60_000], ids=["chroma-index", "in-memory"])
def test_vectors_of_an_ingest_that_died_before_its_commit_do_not_change_answers(corpus_kb_template, tmp_path, monkeypatch, exact_search_max):
    """Deterministic form of the kill -9 case above: the ingest stores its vectors, then dies just before
    the manifest commit. Until the next commit sweeps them, those stray vectors sit in Chroma; searches
    must skip them and return exactly what they returned before, however many there are — through Chroma's
    index and through the in-memory table alike."""
    from assistant.index import KnowledgeBase

    kb = tmp_path / "kb"
    shutil.copytree(corpus_kb_template, kb)
    before = _snapshot(kb, exact_search_max=exact_search_max)

    def die(self, *args, **kwargs):
        raise KeyboardInterrupt("killed before the commit")

    monkeypatch.setattr(KnowledgeBase, "_commit", die)
    assistant = make_assistant(kb)
    with pytest.raises(KeyboardInterrupt):
        assistant.ingest(sorted(LAWS.glob("*.md"))[:8])
    assistant.close()
    monkeypatch.undo()
    assert _snapshot(kb, exact_search_max=exact_search_max) == before
