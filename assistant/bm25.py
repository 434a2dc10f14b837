"""A small BM25 index on a sparse matrix: weights are precomputed at build time, a query is a column sum."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
from scipy import sparse


class BM25Index:
    def __init__(self, ids: list[str], vocab: dict[str, int], weights: sparse.csc_matrix) -> None:
        self.ids = ids
        self.vocab = vocab
        self.weights = weights  # documents × terms, BM25 term weights

    @classmethod
    def build(cls, ids: list[str], token_lists: list[list[str]], *, k1: float = 1.2, b: float = 0.75) -> BM25Index:
        vocab: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        tfs: list[float] = []
        lengths = np.zeros(len(ids), dtype=np.float32)
        for row, tokens in enumerate(token_lists):
            lengths[row] = len(tokens)
            for token, count in Counter(tokens).items():
                rows.append(row)
                cols.append(vocab.setdefault(token, len(vocab)))
                tfs.append(count)
        n_docs = max(len(ids), 1)
        avg_len = float(lengths.mean()) if len(ids) else 1.0
        rows_a = np.asarray(rows, dtype=np.int64)
        cols_a = np.asarray(cols, dtype=np.int64)
        tf = np.asarray(tfs, dtype=np.float32)
        df = np.bincount(cols_a, minlength=len(vocab)).astype(np.float32)
        idf = np.log1p((n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
        norm = k1 * (1 - b + b * lengths[rows_a] / max(avg_len, 1e-6))
        values = idf[cols_a] * tf * (k1 + 1) / (tf + norm)
        matrix = sparse.csc_matrix((values, (rows_a, cols_a)), shape=(len(ids), len(vocab)), dtype=np.float32)
        return cls(list(ids), vocab, matrix)

    def scores(self, tokens: list[str], weights: dict[str, float] | None = None) -> np.ndarray:
        """Score of every document; repeated or weighted query terms count more."""
        counts = Counter(t for t in tokens if t in self.vocab)
        result = np.zeros(len(self.ids), dtype=np.float32)
        for token, count in counts.items():
            col = self.vocab[token]
            lo, hi = self.weights.indptr[col], self.weights.indptr[col + 1]
            factor = count * (weights.get(token, 1.0) if weights else 1.0)
            result[self.weights.indices[lo:hi]] += self.weights.data[lo:hi] * factor
        return result

    def search(self, tokens: list[str], k: int, weights: dict[str, float] | None = None) -> list[tuple[str, float]]:
        if not self.ids:
            return []
        scores = self.scores(tokens, weights)
        k = min(k, len(self.ids))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self.ids[i], float(scores[i])) for i in top if scores[i] > 0]

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        sparse.save_npz(folder / "weights.npz", self.weights.tocsc(), compressed=False)
        (folder / "terms.json").write_text(json.dumps({"ids": self.ids, "vocab": self.vocab}, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> BM25Index:
        data = json.loads((folder / "terms.json").read_text(encoding="utf-8"))
        return cls(data["ids"], data["vocab"], sparse.load_npz(folder / "weights.npz").tocsc())


def idf_of(index: BM25Index, token: str) -> float:
    """Inverse document frequency of a token; a token no document contains gets the highest idf there is,
    because a question word that the texts never use is the strongest sign they do not answer it."""
    col = index.vocab.get(token)
    df = 0 if col is None else index.weights.indptr[col + 1] - index.weights.indptr[col]
    n = len(index.ids)
    return math.log1p((n - df + 0.5) / (df + 0.5))
