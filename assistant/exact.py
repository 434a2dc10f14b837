"""Exact nearest-neighbour search over one Chroma collection's committed vectors, held in memory.

For a school's or a county's knowledge base (thousands to tens of thousands of vectors) one matrix product
is faster than a round trip through Chroma's HNSW index, and exact. Chroma stays the store of record: the
table is read from it once per committed generation. Larger collections are searched through Chroma.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

PAGE = 5000  # rows per Chroma read when loading a table


@dataclass(frozen=True, slots=True)
class VectorTable:
    """Rows grouped by owner (the article a sentence vector belongs to); an article is scored by its best row."""

    owners: tuple[str, ...]
    starts: np.ndarray  # index of each owner's first row; rows of one owner are contiguous
    matrix: np.ndarray  # float32, one unit-length row per stored vector

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, np.ndarray]], owner_of: Callable[[str], str | None], dim: int) -> VectorTable:
        """``rows`` are (vector id, vector); ``owner_of`` maps an id to its article, or None to drop the row."""
        grouped: dict[str, list[np.ndarray]] = {}
        for vector_id, vector in rows:
            owner = owner_of(vector_id)
            if owner is not None:
                grouped.setdefault(owner, []).append(vector)
        owners = tuple(grouped)
        sizes = np.fromiter((len(grouped[o]) for o in owners), dtype=np.int64, count=len(owners))
        starts = np.concatenate(([0], np.cumsum(sizes)[:-1])) if len(owners) else np.zeros(0, dtype=np.int64)
        if owners:
            matrix = np.asarray([v for o in owners for v in grouped[o]], dtype=np.float32)
        else:
            matrix = np.zeros((0, dim), dtype=np.float32)
        return cls(owners, starts.astype(np.int64), matrix)

    def __len__(self) -> int:
        return len(self.matrix)

    def best(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The ``k`` owners with the highest cosine similarity of their best row, best first."""
        if not self.owners or k < 1:
            return []
        # einsum runs on the calling thread; a BLAS product would wake BLAS worker threads, which on a busy
        # 2-core server turned a 0.2 ms product into 10+ ms.
        sims = np.einsum("ij,j->i", self.matrix, np.asarray(vector, dtype=np.float32))
        per_owner = sims if len(self.owners) == len(sims) else np.maximum.reduceat(sims, self.starts)
        k = min(k, len(per_owner))
        top = np.argpartition(-per_owner, k - 1)[:k]
        top = top[np.argsort(-per_owner[top], kind="stable")]
        return [(self.owners[i], float(per_owner[i])) for i in top]


def read_collection(collection) -> Iterable[tuple[str, np.ndarray]]:
    """Every (id, embedding) of a Chroma collection, a page at a time."""
    offset = 0
    while True:
        page = collection.get(include=["embeddings"], limit=PAGE, offset=offset)
        ids = page["ids"]
        if not ids:
            return
        yield from zip(ids, np.asarray(page["embeddings"], dtype=np.float32), strict=True)
        if len(ids) < PAGE:
            return
        offset += len(ids)
