"""The naive baseline (500/50 splitter + langchain-chroma, optionally + BM25/RRF) on tiny documents."""

from __future__ import annotations

import numpy as np
import pytest
from langchain_core.embeddings import Embeddings

from assistant.embed import FakeEmbedder, LangChainEmbeddings
from eval.baseline import NaiveBaseline, rrf_fuse, run_baselines, split_documents
from eval.harness import load_questions
from tests.test_eval_harness import TINY_DOCS, write_tiny_corpus


class CountingEmbedder(FakeEmbedder):
    """The fake embedder, counting the passages it embeds (to see the cache at work)."""

    def __init__(self) -> None:
        self.passages = 0

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        self.passages += len(texts)
        return super().embed_documents(texts)


def test_adapter_is_a_langchain_embeddings():
    adapter = LangChainEmbeddings(FakeEmbedder())
    assert isinstance(adapter, Embeddings)
    vectors = adapter.embed_documents(["学校安全", "校车"])
    assert len(vectors) == 2 and len(vectors[0]) == FakeEmbedder.dim
    assert adapter.embed_query("学校安全") == pytest.approx(vectors[0], abs=1e-6)


def test_rrf_fuse_known_order():
    # 1: 1/61 + 1/62, 3: 1/63 + 1/61, 2: 1/62, 4: 1/64
    assert rrf_fuse([[1, 2, 3, 4], [3, 1]]) == [1, 3, 2, 4]
    assert rrf_fuse([[5, 6], [6, 5]]) == [5, 6]  # a tie keeps first-seen order
    assert rrf_fuse([]) == []


def test_splitter_respects_size_and_overlap():
    sentence = "学校应当建立安全管理制度，定期开展安全检查。"  # 22 characters
    text = "\n".join(sentence for _ in range(60))
    chunks = split_documents({"long.md": text})
    assert len(chunks) > 2
    assert all(c.source == "long.md" and len(c.text) <= 500 for c in chunks)
    assert chunks[1].text.startswith(chunks[0].text[-22:])  # the last line is repeated as overlap


def test_baseline_search_returns_the_matching_chunk(tmp_path):
    baseline = NaiveBaseline.build(TINY_DOCS, FakeEmbedder(), tmp_path / "chroma")
    try:
        assert len(baseline.chunks) == 3  # every tiny document fits one 500-character chunk
        for hybrid in (False, True):
            top = baseline.search("校车载人可以超过核定人数吗？", k=2, hybrid=hybrid)
            assert len(top) == 2 and top[0].source == "校车安全规定.md"
        assert baseline.sparse_ids("游泳池水温", 5) == []  # no shared word, nothing from BM25
    finally:
        baseline.close()


def test_run_baselines_exact_metrics_and_cache(tmp_path):
    _, qa = write_tiny_corpus(tmp_path)
    questions = load_questions(qa)
    embedder = CountingEmbedder()
    cache = tmp_path / "embed-cache.sqlite"
    first = run_baselines(TINY_DOCS, embedder, questions, cache_path=cache)
    assert embedder.passages == 3
    assert list(first) == ["naive-dense", "naive-hybrid"]
    for name, summary in first.items():
        overall = summary["overall"]
        assert summary["system"] == name and summary["chunks"] == 3
        # one chunk per document: q001's two gold items share the top chunk; q005's gold file does not exist
        assert overall["recall@1"] == pytest.approx(0.75)
        assert overall["mrr@10"] == pytest.approx(0.75)
        assert "refusal_recall" not in overall and overall["search_ms"]["n"] == 5
        assert summary["splits"]["holdout"]["recall@10"] == 0.0
    again = run_baselines(TINY_DOCS, embedder, questions, cache_path=cache)
    assert embedder.passages == 3  # second run: every chunk vector came from the cache
    assert again["naive-dense"]["overall"]["recall@5"] == first["naive-dense"]["overall"]["recall@5"]
