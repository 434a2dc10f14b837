"""BM25 on a sparse matrix: term weights are precomputed, a query is a sum of columns.

Beside the weights the index keeps what they are made of: the term counts (in the same sparse layout) and
the length of every document. Removing or adding a few documents then counts only those documents'
tokens; every weight is recomputed from the counts with array operations, since idf and the average
length move with each document.
"""

from __future__ import annotations

import json
import math
import shutil
from collections import Counter
from collections.abc import Sequence, Set
from itertools import compress
from pathlib import Path

import numpy as np
from scipy import sparse

K1 = 1.2
B = 0.75
COUNTS = "counts.npz"  # absent in indexes saved before incremental updates


class BM25Index:
    """Documents × terms. ``vocab`` maps a term to its column and lists the terms in column order (new terms
    are appended), which is how it is saved."""

    def __init__(
        self, ids: list[str], vocab: dict[str, int], weights: sparse.csc_matrix, *, tf: np.ndarray | None = None,
        lengths: np.ndarray | None = None, folder: Path | None = None, k1: float = K1, b: float = B,
    ) -> None:
        self.ids = ids
        self.vocab = vocab
        self.weights = weights  # documents × terms, BM25 term weights
        self.k1 = k1
        self.b = b
        self._tf = tf  # term count behind each entry of weights.data, in the same order (smallest integer type)
        self._lengths = lengths  # tokens per document
        self._folder = folder  # a loaded index reads its counts from here on the first update

    @classmethod
    def build(cls, ids: list[str], token_lists: list[list[str]], *, k1: float = K1, b: float = B) -> BM25Index:
        empty = sparse.csc_matrix((0, 0), dtype=np.float32)
        return cls([], {}, empty, tf=np.zeros(0, np.uint8), lengths=np.zeros(0, np.int64), k1=k1, b=b).update(
            add_ids=ids, token_lists=token_lists
        )

    @property
    def updatable(self) -> bool:
        """False for an index saved without its term counts (by a version before incremental updates)."""
        return self._counts() is not None

    def update(
        self, *, remove: Set[str] = frozenset(), add_ids: Sequence[str] = (), token_lists: Sequence[list[str]] = ()
    ) -> BM25Index:
        """A new index without the documents in ``remove`` and with the given ones appended; this one stays as it was.

        Raises:
            ValueError: the index has no term counts (see :attr:`updatable`); build it from scratch instead.
        """
        counts = self._counts()
        if counts is None:
            raise ValueError("this BM25 index was saved without term counts; build it from scratch")
        tf, lengths = counts
        matrix = sparse.csc_matrix((tf, self.weights.indices, self.weights.indptr), shape=self.weights.shape)
        ids = self.ids
        if remove:
            keep = np.fromiter((i not in remove for i in ids), dtype=bool, count=len(ids))
            if not keep.all():
                matrix, lengths, ids = matrix[np.flatnonzero(keep)], lengths[keep], list(compress(ids, keep))
        vocab = dict(self.vocab)
        rows: list[int] = []
        cols: list[int] = []
        added: list[int] = []
        for row, tokens in enumerate(token_lists, start=len(ids)):
            for token, count in Counter(tokens).items():
                rows.append(row)
                cols.append(vocab.setdefault(token, len(vocab)))
                added.append(count)
        shape = (len(ids) + len(add_ids), len(vocab))
        # New terms are empty columns of the kept rows; the added rows come after all kept ones.
        indptr = np.concatenate([matrix.indptr, np.full(len(vocab) - matrix.shape[1], matrix.indptr[-1], dtype=matrix.indptr.dtype)])
        matrix = sparse.csc_matrix((matrix.data, matrix.indices, indptr), shape=shape)
        if added:
            matrix = matrix + sparse.csc_matrix((np.asarray(added, dtype=np.float32), (rows, cols)), shape=shape)
        lengths = np.concatenate([lengths, np.fromiter(map(len, token_lists), dtype=np.int64, count=len(add_ids))])
        tf = matrix.data.astype(np.min_scalar_type(int(matrix.data.max(initial=0))))
        return BM25Index(ids + list(add_ids), vocab, _weights(matrix, lengths, self.k1, self.b), tf=tf, lengths=lengths,
                         k1=self.k1, b=self.b)

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
        """The k best documents with a positive score; equal scores in id order, so that the ranking does not
        depend on the order in which documents were added."""
        if not self.ids or k <= 0:
            return []
        scores = self.scores(tokens, weights)
        cut = len(scores) - min(k, len(scores))
        kth = np.partition(scores, cut)[cut]
        found = np.flatnonzero((scores >= kth) & (scores > 0))
        ranked = sorted(zip((-scores[found]).tolist(), [self.ids[i] for i in found.tolist()], strict=True))
        return [(cid, -negated) for negated, cid in ranked[:k]]

    def save(self, folder: Path) -> None:
        # A killed ingest can leave a folder of this name holding another index's files: start empty.
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        sparse.save_npz(folder / "weights.npz", self.weights, compressed=False)
        counts = self._counts()
        if counts is not None:
            tf, lengths = counts
            np.savez(folder / COUNTS, tf=tf, lengths=lengths)
        # Terms as a list in column order: encoding a large dict allocates an object per entry, and in a
        # process holding a big knowledge base each allocation burst sets off full garbage collections.
        terms = {"ids": self.ids, "terms": list(self.vocab), "k1": self.k1, "b": self.b}
        (folder / "terms.json").write_text(json.dumps(terms, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> BM25Index:
        """The saved weights; the counts are read only when the index is updated."""
        data = json.loads((folder / "terms.json").read_text(encoding="utf-8"))
        vocab = data["vocab"] if "vocab" in data else dict(zip(data["terms"], range(len(data["terms"])), strict=True))
        weights = sparse.load_npz(folder / "weights.npz").tocsc()
        return cls(data["ids"], vocab, weights, folder=folder, k1=data.get("k1", K1), b=data.get("b", B))

    def _counts(self) -> tuple[np.ndarray, np.ndarray] | None:
        if self._tf is None and self._folder is not None and (self._folder / COUNTS).exists():
            with np.load(self._folder / COUNTS) as saved:
                tf, lengths = saved["tf"], saved["lengths"]
            if len(tf) == self.weights.nnz and len(lengths) == len(self.ids):
                self._tf, self._lengths = tf, lengths
        return None if self._tf is None or self._lengths is None else (self._tf, self._lengths)


def _weights(tf: sparse.csc_matrix, lengths: np.ndarray, k1: float, b: float) -> sparse.csc_matrix:
    """BM25 weights in the layout of the term counts. Document frequencies and the total length are integer
    sums, so a weight comes out bit for bit the same whatever order the documents were added in."""
    n_docs = max(len(lengths), 1)
    df = np.diff(tf.indptr)
    idf = np.log1p((n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
    avg_len = int(lengths.sum()) / n_docs
    norm = (k1 * (1 - b + b * lengths / max(avg_len, 1e-6))).astype(np.float32)
    # weight = idf · tf·(k1+1) / (tf + norm), computed in place: one float32 array of nnz at a time
    counts = tf.data.astype(np.float32, copy=False)
    values = norm[tf.indices]
    values += counts
    np.divide(counts, values, out=values)
    values *= np.float32(k1 + 1)
    values *= np.repeat(idf, df)
    return sparse.csc_matrix((values, tf.indices, tf.indptr), shape=tf.shape)


def idf_of(index: BM25Index, token: str) -> float:
    """Inverse document frequency of a token; a token no document contains gets the highest idf there is,
    because a question word that the texts never use is the strongest sign they do not answer it."""
    col = index.vocab.get(token)
    df = 0 if col is None else index.weights.indptr[col + 1] - index.weights.indptr[col]
    n = len(index.ids)
    return math.log1p((n - df + 0.5) / (df + 0.5))
