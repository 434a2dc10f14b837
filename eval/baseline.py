"""The naive RAG recipe, measured on the same questions for a side-by-side comparison.

``naive-dense``: LangChain ``RecursiveCharacterTextSplitter(chunk_size=500, chunk_overlap=50)`` over each
document's text, a langchain-chroma ``Chroma`` store (persistent, in a temporary folder) fed by our own
embedder through the LangChain adapter, top-k by vector similarity.
``naive-hybrid``: the same plus BM25 over jieba words, fused with the dense list by reciprocal rank (k=60).

A chunk hits a gold item when the chunk's text contains the phrase and its document's file name matches.
The baseline has no answerer, so only retrieval metrics and search latency are reported for it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from assistant.bm25 import BM25Index
from assistant.embed import Embedder, EmbeddingCache, LangChainEmbeddings
from assistant.text import words
from eval.harness import WARMUP_QUESTIONS, Question, summarize_run, timed
from eval.metrics import MRR_K, Outcome, Passage, first_hit_rank, gold_ranks

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from langchain_chroma import Chroma

CHUNK_SIZE = 500
CHUNK_OVERLAP = 50
RRF_K = 60
DEPTH = 60  # candidates taken from each list before fusion
VARIANTS = ("naive-dense", "naive-hybrid")
COLLECTION = "naive_baseline"


class CachedEmbedder:
    """An embedder whose document vectors are read from / written to an :class:`EmbeddingCache`."""

    def __init__(self, embedder: Embedder, cache: EmbeddingCache, *, progress: Callable[[int], None] | None = None) -> None:
        self.inner = embedder
        self.cache = cache
        self.progress = progress  # called with the number of passages embedded (not cached) per batch
        self.name = embedder.name
        self.dim = embedder.dim

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        return self.cache.embed(self.inner, list(texts), progress=self.progress)

    def embed_query(self, text: str) -> np.ndarray:
        return self.inner.embed_query(text)


def split_documents(texts: Mapping[str, str], *, chunk_size: int = CHUNK_SIZE, chunk_overlap: int = CHUNK_OVERLAP) -> list[Passage]:
    """Split each document (file name → text) with LangChain's default recursive splitter."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap)
    return [Passage(source, piece) for source, text in texts.items() for piece in splitter.split_text(text)]


def rrf_fuse(ranked_lists: Sequence[Sequence[int]], *, k: int = RRF_K) -> list[int]:
    """Reciprocal-rank fusion: score(d) = Σ 1/(k + rank); ties keep first-seen order."""
    scores: dict[int, float] = {}
    for ids in ranked_lists:
        for rank, item in enumerate(ids, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores, key=lambda item: -scores[item])


@dataclass
class NaiveBaseline:
    """Chunks in a langchain-chroma store and a BM25 index; converts results to our own passages."""

    chunks: list[Passage]
    store: Chroma
    client: ClientAPI  # closed by close()
    bm25: BM25Index

    @classmethod
    def build(cls, texts: Mapping[str, str], embedder: Embedder, persist_dir: Path) -> NaiveBaseline:
        """Split, embed and index ``texts`` (file name → document text) under ``persist_dir``."""
        import chromadb
        from langchain_chroma import Chroma

        chunks = split_documents(texts)
        client = chromadb.PersistentClient(path=str(persist_dir), settings=chromadb.Settings(anonymized_telemetry=False))
        store = Chroma(collection_name=COLLECTION, embedding_function=LangChainEmbeddings(embedder), client=client)
        ids = [str(i) for i in range(len(chunks))]
        for start in range(0, len(chunks), 1000):  # below Chroma's maximum batch size
            part = range(start, min(start + 1000, len(chunks)))
            store.add_texts([chunks[i].text for i in part], metadatas=[{"source": chunks[i].source, "i": i} for i in part],
                            ids=[ids[i] for i in part])
        bm25 = BM25Index.build(ids, [words(c.text) for c in chunks])
        return cls(chunks, store, client, bm25)

    def dense_ids(self, question: str, k: int) -> list[int]:
        documents = self.store.similarity_search(question, k=min(k, len(self.chunks)))
        return [int(d.metadata["i"]) for d in documents]

    def sparse_ids(self, question: str, k: int) -> list[int]:
        return [int(cid) for cid, _ in self.bm25.search(words(question), k)]

    def search(self, question: str, *, k: int = 10, hybrid: bool = False) -> list[Passage]:
        """Top-k chunks: dense only, or dense and BM25 fused by RRF."""
        if hybrid:
            ids = rrf_fuse([self.dense_ids(question, DEPTH), self.sparse_ids(question, DEPTH)])[:k]
        else:
            ids = self.dense_ids(question, k)
        return [self.chunks[i] for i in ids]

    def close(self) -> None:
        self.client.close()


def evaluate_baseline(baseline: NaiveBaseline, questions: Sequence[Question], *, hybrid: bool, k: int = 10) -> list[Outcome]:
    """Search every question (the naive recipe has no role handling and no answerer)."""
    for q in questions[:WARMUP_QUESTIONS]:
        baseline.search(q.question, k=k, hybrid=hybrid)
    outcomes = []
    for q in questions:
        passages, search_ms, search_cpu = timed(lambda q=q: baseline.search(q.question, k=k, hybrid=hybrid))
        ranks = gold_ranks(passages[:MRR_K], q.gold)
        outcomes.append(Outcome(q.id, q.kind, q.split, q.answerable, ranks, first_hit_rank(ranks),
                                search_ms=search_ms, search_cpu_ms=search_cpu))
    return outcomes


def run_baselines(texts: Mapping[str, str], embedder: Embedder, questions: Sequence[Question], *,
                  cache_path: Path | None = None, k: int = 10, progress: Callable[[int], None] | None = None) -> dict[str, dict]:
    """Build the naive index in a temporary folder and evaluate both variants; summaries by variant name.

    With ``cache_path``, chunk vectors go through the embedding cache there, so re-runs cost no model time;
    ``progress`` then hears how many chunks were embedded.
    """
    cache = EmbeddingCache(cache_path) if cache_path is not None else None
    used: Embedder = CachedEmbedder(embedder, cache, progress=progress) if cache is not None else embedder
    try:
        with tempfile.TemporaryDirectory(prefix="naive-baseline-") as folder:
            baseline = NaiveBaseline.build(texts, used, Path(folder) / "chroma")
            try:
                return {
                    name: summarize_run(name, evaluate_baseline(baseline, questions, hybrid=name.endswith("hybrid"), k=k),
                                        embedder=embedder.name, k=k, chunks=len(baseline.chunks), documents=len(texts))
                    for name in VARIANTS
                }
            finally:
                baseline.close()
    finally:
        if cache is not None:
            cache.close()
