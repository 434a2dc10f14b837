"""BM25 updated in place must rank and score exactly like an index built from scratch over the same chunks."""

import math
import random
from collections import Counter

import numpy as np
import pytest

from assistant.bm25 import COUNTS, BM25Index, idf_of

WORDS = ["学校", "安全", "校车", "驾驶人", "食堂", "留样", "班主任", "学生", "教师", "消防", "演练", "责任", "~安全", "~学校"]


def _random_tokens(rng: random.Random) -> list[str]:
    # Skewed draws: common words repeat inside a chunk and across chunks, rare ones come and go, and short
    # chunks of the same words give equal scores, so ties are exercised too.
    words = WORDS + [f"罕见{rng.randrange(40)}" for _ in range(3)]
    return rng.choices(words, weights=[1 / (i + 1) for i in range(len(words))], k=rng.randrange(0, 16))


def _queries(rng: random.Random) -> list[tuple[list[str], dict[str, float] | None]]:
    queries = [([word], None) for word in WORDS] + [(["不存在的词"], None)]
    for _ in range(12):
        words = rng.choices(WORDS + ["罕见1", "罕见7", "不存在的词"], k=rng.randrange(1, 6))
        weights = {w: rng.choice([0.25, 1.0, 3.0]) for w in words} if rng.random() < 0.5 else None
        queries.append((words, weights))
    return queries


def _reference_scores(docs: dict[str, list[str]], tokens: list[str], weights: dict[str, float] | None) -> dict[str, float]:
    """Textbook BM25, one document at a time, in double precision."""
    n = len(docs)
    avg = sum(map(len, docs.values())) / n
    df = Counter(t for toks in docs.values() for t in set(toks))
    scores = {}
    for cid, toks in docs.items():
        tf = Counter(toks)
        score = 0.0
        for term, count in Counter(tokens).items():
            if tf[term]:
                idf = math.log1p((n - df[term] + 0.5) / (df[term] + 0.5))
                norm = 1.2 * (1 - 0.75 + 0.75 * len(toks) / max(avg, 1e-6))
                score += count * (weights or {}).get(term, 1.0) * idf * tf[term] * 2.2 / (tf[term] + norm)
        scores[cid] = score
    return scores


def _assert_same_as_fresh(index: BM25Index, docs: dict[str, list[str]], queries) -> None:
    fresh = BM25Index.build(list(docs), list(docs.values()))
    assert sorted(index.ids) == sorted(docs)
    for tokens, weights in queries:
        for k in (1, 3, len(docs) + 1):
            got, want = index.search(tokens, k, weights), fresh.search(tokens, k, weights)
            assert [cid for cid, _ in got] == [cid for cid, _ in want]
            assert np.allclose([s for _, s in got], [s for _, s in want], rtol=0, atol=1e-6)
        if docs:
            by_id = dict(zip(index.ids, index.scores(tokens, weights).tolist(), strict=True))
            reference = _reference_scores(docs, tokens, weights)
            assert np.allclose([by_id[c] for c in docs], [reference[c] for c in docs], rtol=1e-5, atol=1e-6)
    for word in [*WORDS, "不存在的词"]:
        assert idf_of(index, word) == pytest.approx(idf_of(fresh, word), abs=1e-9)


@pytest.mark.parametrize("seed", range(20))
def test_random_adds_replaces_and_removes_match_a_fresh_build(seed, tmp_path):
    rng = random.Random(seed)
    docs = {f"c{i}": _random_tokens(rng) for i in range(rng.randrange(0, 6))}
    index = BM25Index.build(list(docs), list(docs.values()))
    queries = _queries(rng)
    next_id = len(docs)
    for step in range(25):
        remove: set[str] = set()
        added: dict[str, list[str]] = {}
        for _ in range(rng.randrange(1, 4)):
            action = rng.choice(["add", "replace", "remove"]) if docs else "add"
            if action == "add":
                added[f"c{next_id}"] = _random_tokens(rng)
                next_id += 1
            else:
                cid = rng.choice(sorted(docs))
                remove.add(cid)
                if action == "replace":
                    added[cid] = _random_tokens(rng)
        for cid in remove:
            docs.pop(cid, None)
        docs.update(added)
        index = index.update(remove=remove, add_ids=list(added), token_lists=list(added.values()))
        if step % 7 == 3:  # from disk, the counts are read back on the next update
            index.save(tmp_path / str(step))
            index = BM25Index.load(tmp_path / str(step))
        _assert_same_as_fresh(index, docs, queries)


def test_update_leaves_the_original_index_unchanged():
    original = BM25Index.build(["a", "b"], [["校车", "安全"], ["食堂"]])
    before = original.search(["校车", "食堂"], 5)
    updated = original.update(remove={"a"}, add_ids=["c"], token_lists=[["校车", "校车"]])
    assert original.search(["校车", "食堂"], 5) == before
    assert [cid for cid, _ in updated.search(["校车"], 5)] == ["c"]


def test_index_saved_without_counts_still_searches_but_cannot_be_updated(tmp_path):
    index = BM25Index.build(["a", "b", "c"], [["校车", "安全"], ["食堂", "留样"], ["安全"]])
    index.save(tmp_path / "1")
    (tmp_path / "1" / COUNTS).unlink()  # what versions before incremental updates wrote
    old = BM25Index.load(tmp_path / "1")
    assert old.search(["安全"], 3) == index.search(["安全"], 3)
    assert not old.updatable
    with pytest.raises(ValueError, match="build it from scratch"):
        old.update(remove={"a"})


def test_save_starts_from_an_empty_folder(tmp_path):
    # A killed ingest can leave a generation folder with another index's counts, of the very same size.
    BM25Index.build(["x", "y"], [["无关"], ["词"]]).save(tmp_path / "7")
    index = BM25Index.build(["a", "b"], [["校车"], ["食堂"]])
    index.save(tmp_path / "old")
    (tmp_path / "old" / COUNTS).unlink()
    BM25Index.load(tmp_path / "old").save(tmp_path / "7")
    assert not BM25Index.load(tmp_path / "7").updatable
