"""KnowledgeBase on a real Chroma on disk: incremental, atomic, embedder-aware."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from assistant.embed import FakeEmbedder
from assistant.errors import EmbedderMismatchError
from assistant.index import KnowledgeBase, rebuild_knowledge_base
from tests.conftest import REPO, law


class CountingEmbedder(FakeEmbedder):
    """The fake embedder, counting how many texts it was asked to embed."""

    def __init__(self):
        self.calls = 0

    def embed_documents(self, texts):
        self.calls += len(texts)
        return super().embed_documents(texts)


class OtherEmbedder(FakeEmbedder):
    name = "fake/other-model"


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


DOC_A = "# 甲条例\n\n## 第一章 总则\n\n第一条 学校应当建立安全管理制度。\n\n第二条 班主任应当每天清点学生人数。\n"
DOC_B = "# 乙办法\n\n第一条 校车驾驶人应当持有驾驶证。\n\n第二条 食堂应当每日留样。\n"


def test_ingest_then_search_both_indexes(tmp_path):
    src = tmp_path / "src"
    _write(src, "甲条例.md", DOC_A)
    _write(src, "乙办法.md", DOC_B)
    kb = KnowledgeBase(tmp_path / "kb", FakeEmbedder())
    report = kb.ingest([src])
    assert sorted(report.added) == ["乙办法.md", "甲条例.md"]
    assert report.chunks_embedded == 4
    assert [d.source for d in kb.documents()] == ["乙办法.md", "甲条例.md"]
    sparse = kb.bm25.search(["留样"], 3)
    assert kb.chunks[sparse[0][0]].text == "第二条 食堂应当每日留样。"
    dense = kb.dense_search(kb.embedder.embed_query("校车驾驶人驾驶证"), 2)
    assert kb.chunks[dense[0][0]].section == "第一条" and kb.chunks[dense[0][0]].source == "乙办法.md"
    kb.close()


def test_reingest_unchanged_does_no_work_and_changed_file_is_replaced(tmp_path):
    src = tmp_path / "src"
    a = _write(src, "甲条例.md", DOC_A)
    _write(src, "乙办法.md", DOC_B)
    embedder = CountingEmbedder()
    kb = KnowledgeBase(tmp_path / "kb", embedder)
    kb.ingest([src])
    first_calls = embedder.calls
    manifest_before = (tmp_path / "kb" / "manifest.json").read_text(encoding="utf-8")

    again = kb.ingest([src])
    assert again.unchanged == ["乙办法.md", "甲条例.md"] and not again.changed
    assert embedder.calls == first_calls
    assert (tmp_path / "kb" / "manifest.json").read_text(encoding="utf-8") == manifest_before

    a.write_text(DOC_A.replace("每天清点学生人数", "每天放学清点学生人数"), encoding="utf-8")
    changed = kb.ingest([src])
    assert changed.updated == ["甲条例.md"]
    # only the changed article is new; the unchanged one comes from the embedding cache
    assert embedder.calls == first_calls + 1
    texts = [c.text for c in kb.chunks.values()]
    assert "第二条 班主任应当每天放学清点学生人数。" in texts
    assert "第二条 班主任应当每天清点学生人数。" not in texts
    # the vector store holds exactly the committed chunks
    stored = kb._collection_handle().get(include=[])["ids"]
    assert sorted(stored) == sorted(kb.chunks)
    kb.close()


def test_remove_deletes_document_from_every_index(tmp_path):
    src = tmp_path / "src"
    _write(src, "甲条例.md", DOC_A)
    _write(src, "乙办法.md", DOC_B)
    kb = KnowledgeBase(tmp_path / "kb", FakeEmbedder())
    kb.ingest([src])
    report = kb.remove(["乙办法.md", "不存在.md"])
    assert report.removed == ["乙办法.md"]
    assert "不存在.md: not in the knowledge base" in report.skipped[0]
    assert [d.source for d in kb.documents()] == ["甲条例.md"]
    assert kb.bm25.search(["留样"], 3) == []
    assert all(kb.chunks[cid].source == "甲条例.md" for cid, _ in kb.dense_search(kb.embedder.embed_query("食堂留样"), 5))
    assert len(kb._collection_handle().get(include=[])["ids"]) == 2
    kb.close()
    reopened = KnowledgeBase(tmp_path / "kb", FakeEmbedder())
    assert [d.source for d in reopened.documents()] == ["甲条例.md"]
    reopened.close()


def test_bad_files_are_skipped_and_the_rest_ingests(tmp_path):
    src = tmp_path / "src"
    _write(src, "甲条例.md", DOC_A)
    (src / "坏文件.txt").write_bytes(b"\x00\xff" * 50)
    (src / "空.md").write_bytes(b"")
    kb = KnowledgeBase(tmp_path / "kb", FakeEmbedder())
    report = kb.ingest([src])
    assert report.added == ["甲条例.md"]
    assert any(s.startswith("坏文件.txt: looks binary") for s in report.skipped)
    assert any(s.startswith("空.md: the file is empty") for s in report.skipped)
    kb.close()


def test_query_embedder_must_match_the_index(tmp_path):
    src = tmp_path / "src"
    _write(src, "甲条例.md", DOC_A)
    KnowledgeBase(tmp_path / "kb", FakeEmbedder()).ingest([src])
    with pytest.raises(EmbedderMismatchError, match="built with embedder 'fake/hashed-bigrams-256'.*duty ingest --rebuild"):
        KnowledgeBase(tmp_path / "kb", OtherEmbedder())
    report = rebuild_knowledge_base(tmp_path / "kb", OtherEmbedder(), [src])
    assert report.added == ["甲条例.md"]
    kb = KnowledgeBase(tmp_path / "kb", OtherEmbedder())
    assert json.loads((tmp_path / "kb" / "manifest.json").read_text())["embedder"] == "fake/other-model"
    assert len(kb.chunks) == 2
    kb.close()


def test_embedding_cache_survives_a_fresh_knowledge_base(tmp_path):
    src = tmp_path / "src"
    _write(src, "甲条例.md", DOC_A)
    embedder = CountingEmbedder()
    kb = KnowledgeBase(tmp_path / "kb", embedder)
    kb.ingest([src])
    kb.close()
    (tmp_path / "kb" / "manifest.json").unlink()
    kb = KnowledgeBase(tmp_path / "kb", embedder)
    kb.ingest([src])
    assert embedder.calls == 2  # second ingest embedded nothing
    vectors = kb._collection_handle().get(include=["embeddings"])["embeddings"]
    assert np.allclose(np.linalg.norm(np.asarray(vectors), axis=1), 1.0, atol=1e-5)
    kb.close()


SLOW_INGEST = """
import sys, time
from pathlib import Path
from assistant.embed import FakeEmbedder
from assistant.index import KnowledgeBase

class Slow(FakeEmbedder):
    def embed_documents(self, texts):
        time.sleep(0.02)
        return super().embed_documents(texts)

kb = KnowledgeBase(Path(sys.argv[1]), Slow())
print("started", flush=True)
kb.ingest([Path(p) for p in sys.argv[2:]])
print("finished", flush=True)
"""


@pytest.mark.shared
def test_killed_ingest_leaves_the_previous_knowledge_base_usable(tmp_path):
    kb_dir = tmp_path / "kb"
    first = law("校车安全管理条例")
    kb = KnowledgeBase(kb_dir, FakeEmbedder())
    kb.ingest([first])
    before_docs = [d.to_json() for d in kb.documents()]
    before_hits = kb.bm25.search(["校车", "驾驶人"], 5)
    kb.close()
    more = [law("未成年人保护法"), law("安全生产法"), law("食品安全法")]
    script = tmp_path / "slow_ingest.py"
    script.write_text(SLOW_INGEST, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    outcomes = set()
    for delay in (0.3, 0.8, 1.5, 2.5):
        proc = subprocess.Popen([sys.executable, str(script), str(kb_dir), str(first), *map(str, more)],
                                stdout=subprocess.PIPE, env=env, text=True)
        assert proc.stdout.readline().strip() == "started"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kb = KnowledgeBase(kb_dir, FakeEmbedder())
        docs = [d.to_json() for d in kb.documents()]
        if len(docs) == 1:
            outcomes.add("before")
            assert docs == before_docs
            assert kb.bm25.search(["校车", "驾驶人"], 5) == before_hits
        else:
            outcomes.add("after")
            assert len(docs) == 4
        # every committed chunk is fully usable
        assert all(kb.docs[c.doc_id].text[c.start : c.end] == c.text for c in kb.chunks.values())
        kb.close()
        if len(docs) == 4:
            break
    assert "before" in outcomes
    # a restart finishes the job, reusing cached vectors
    kb = KnowledgeBase(kb_dir, FakeEmbedder())
    report = kb.ingest([first, *more])
    assert len(kb.documents()) == 4
    assert sorted(report.unchanged + report.added) == sorted(p.name for p in [first, *more])
    stored = kb._collection_handle().get(include=[])["ids"]
    assert sorted(stored) == sorted(kb.chunks)
    kb.close()


def test_vector_table_scores_each_article_by_its_best_sentence():
    from assistant.exact import VectorTable

    rows = [("a:0", [1.0, 0.0]), ("b:0", [0.0, 1.0]), ("a:1", [0.6, 0.8]), ("gone:0", [1.0, 0.0]), ("c:0", [-1.0, 0.0])]
    table = VectorTable.from_rows(((i, np.asarray(v, dtype=np.float32)) for i, v in rows),
                                  lambda vid: None if vid.startswith("gone") else vid.split(":")[0], 2)
    assert len(table) == 4  # the row of an article outside the manifest is left out
    query = np.asarray([0.0, 1.0], dtype=np.float32)
    assert table.best(query, 5) == [("b", 1.0), ("a", pytest.approx(0.8)), ("c", 0.0)]
    assert table.best(np.asarray([1.0, 0.0], dtype=np.float32), 1) == [("a", 1.0)]
    assert VectorTable.from_rows([], lambda vid: vid, 2).best(query, 3) == []


def test_in_memory_search_matches_chroma_and_follows_new_commits(tmp_path):
    src = tmp_path / "src"
    _write(src, "甲条例.md", DOC_A)
    exact = KnowledgeBase(tmp_path / "kb", FakeEmbedder())
    exact.ingest([src])
    query = exact.embedder.embed_query("校车驾驶人应当持有驾驶证")
    assert all(exact.chunks[cid].source == "甲条例.md" for cid, _ in exact.dense_search(query, 5))
    _write(src, "乙办法.md", DOC_B)
    exact.ingest([src])  # the table read before this commit must not hide the new document
    top, _ = exact.dense_search(query, 5)[0]
    assert exact.chunks[top].text == "第一条 校车驾驶人应当持有驾驶证。"
    via_chroma = KnowledgeBase(tmp_path / "kb", FakeEmbedder(), exact_max=0)
    for search in ("dense_search", "window_search"):
        mine, theirs = getattr(exact, search)(query, 4), getattr(via_chroma, search)(query, 4)
        assert [cid for cid, _ in mine] == [cid for cid, _ in theirs]
        assert [s for _, s in mine] == pytest.approx([s for _, s in theirs], abs=1e-5)
    assert exact._tables and not any(via_chroma._tables.values())
    exact.close()
    via_chroma.close()
