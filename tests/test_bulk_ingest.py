"""Bulk profile and resumable ingest (issue 8). Needs ../shared (real law texts)."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.embed import FakeEmbedder
from assistant.index import KnowledgeBase
from tests.conftest import law

pytestmark = pytest.mark.shared

FILES = ("校车安全管理条例", "未成年人保护法", "安全生产法", "食品安全法")


class FailingEmbedder(FakeEmbedder):
    """Fails on the n-th batch of documents, like an ingest killed half way."""

    def __init__(self, fail_on_call: int) -> None:
        self.calls = 0
        self.fail_on_call = fail_on_call

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise KeyboardInterrupt("interrupted")
        return super().embed_documents(texts)


def test_an_interrupted_ingest_keeps_committed_batches_and_resumes(tmp_path):
    paths = [law(name) for name in FILES]
    kb = KnowledgeBase(tmp_path / "kb", FailingEmbedder(fail_on_call=10**9), commit_every=2)
    kb.ingest(paths[:2])  # learn how many embedding batches two files take
    per_batch = kb.embedder.calls
    kb.close()

    kb = KnowledgeBase(tmp_path / "kb2", FailingEmbedder(fail_on_call=per_batch + 1), commit_every=2)
    with pytest.raises(KeyboardInterrupt):
        kb.ingest(paths)
    kb.close()
    kb = KnowledgeBase(tmp_path / "kb2", FakeEmbedder(), commit_every=2)
    assert sorted(d.source for d in kb.documents()) == sorted(p.name for p in paths[:2])
    report = kb.ingest(paths)
    assert sorted(report.unchanged) == sorted(p.name for p in paths[:2])
    assert sorted(report.added) == sorted(p.name for p in paths[2:])
    assert sorted(kb._collection_handle().get(include=[])["ids"]) == sorted(kb.chunks)
    kb.close()


def test_bulk_profile_parses_in_parallel_to_the_same_index(tmp_path):
    paths = [law(name) for name in FILES]
    serial = KnowledgeBase(tmp_path / "serial", FakeEmbedder())
    serial.ingest(paths)
    bulk = KnowledgeBase(tmp_path / "bulk", FakeEmbedder(), bulk=True, commit_every=3)
    bulk.ingest(paths)
    try:
        assert bulk.chunk_tokens == serial.chunk_tokens
        assert {c: ch.text for c, ch in bulk.chunks.items()} == {c: ch.text for c, ch in serial.chunks.items()}
        assert bulk._collection_handle().count() == len(bulk.chunks)
        assert bulk._collection_handle("duty_windows").count() == 0  # no sentence vectors in bulk
        assert serial._collection_handle("duty_windows").count() > 0
    finally:
        serial.close()
        bulk.close()


def test_sparse_bulk_profile_stores_no_vectors_and_stays_searchable(tmp_path):
    kb = KnowledgeBase(tmp_path / "kb", FakeEmbedder(), bulk=True, bulk_vectors=False)
    try:
        kb.ingest([law("校车安全管理条例")])
        assert kb._collection_handle().count() == 0
        hits = kb.bm25.search(["校车", "驾驶人"], 3)
        assert hits and hits[0][0] in kb.chunks
        assert kb.dense_search(kb.embedder.embed_query("校车驾驶人"), 3) == []
    finally:
        kb.close()
