"""The knowledge base updates its BM25 index in place at each commit, on real law texts: after every ingest
or removal, and after reopening, it ranks and scores like an index built from scratch over the same chunks.
A commit that fails before its manifest leaves the previous index answering; a knowledge base written
before incremental updates still opens, and upgrades itself on the next commit."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from assistant import index as index_module
from assistant.bm25 import COUNTS, BM25Index
from assistant.embed import FakeEmbedder
from assistant.index import KnowledgeBase
from assistant.text import bm25_tokens
from tests.conftest import law

QUESTIONS = ["校车驾驶人应当具备什么条件", "学校食堂留样", "未成年人保护 学校 责任", "生产经营单位主要负责人职责", "消防演练", "本条为测试追加的条款"]
APPENDED = "\n\n第九百九十九条 本条为测试追加的条款：校车驾驶人应当每日检查车辆并记录。\n"


def _assert_matches_fresh_build(kb: KnowledgeBase) -> None:
    fresh = BM25Index.build(list(kb.chunk_tokens), list(kb.chunk_tokens.values()))
    assert sorted(kb.bm25.ids) == sorted(kb.chunks)
    for question in QUESTIONS:
        tokens = bm25_tokens(question)
        got, want = kb.bm25.search(tokens, 50), fresh.search(tokens, 50)
        assert got and [cid for cid, _ in got] == [cid for cid, _ in want]
        assert np.allclose([s for _, s in got], [s for _, s in want], rtol=0, atol=1e-6)


def _generation_folder(kb: KnowledgeBase):
    return kb.root / "bm25" / str(kb._manifest["generation"])


def _ingested(tmp_path, *laws: str) -> tuple[Path, KnowledgeBase]:
    """A folder holding copies of the named shared laws, and a knowledge base that has ingested it."""
    src = tmp_path / "src"
    src.mkdir()
    for name in laws:
        shutil.copy(law(name), src)
    kb = KnowledgeBase(tmp_path / "kb", FakeEmbedder())
    kb.ingest([src])
    return src, kb


@pytest.mark.shared
def test_commits_update_bm25_in_place_like_a_fresh_build_on_shared_laws(tmp_path, caplog):
    src, kb = _ingested(tmp_path, "校车安全管理条例", "食品安全法", "未成年人保护法", "安全生产法")
    changed = next(src.glob("校车安全管理条例*"))
    _assert_matches_fresh_build(kb)

    changed.write_text(changed.read_text(encoding="utf-8") + APPENDED, encoding="utf-8")
    assert kb.ingest([src]).updated == [changed.name]
    assert kb.chunks[kb.bm25.search(bm25_tokens("本条为测试追加的条款"), 1)[0][0]].section.endswith("第九百九十九条")
    _assert_matches_fresh_build(kb)

    assert kb.remove([next(src.glob("食品安全法*")).name]).removed
    _assert_matches_fresh_build(kb)

    shutil.copy(law("消防法"), src)
    changed.write_text(changed.read_text(encoding="utf-8").replace(APPENDED, ""), encoding="utf-8")
    report = kb.ingest([src])
    assert report.updated == [changed.name] and len(report.added) == 2  # 消防法 and the removed 食品安全法
    _assert_matches_fresh_build(kb)
    assert [p.name for p in (kb.root / "bm25").iterdir()] == [_generation_folder(kb).name]
    kb.close()

    reopened = KnowledgeBase(tmp_path / "kb", FakeEmbedder())  # weights from disk, counts read on the next commit
    _assert_matches_fresh_build(reopened)
    assert reopened.remove([changed.name]).removed
    _assert_matches_fresh_build(reopened)
    reopened.close()
    assert not caplog.records  # never fell back to a build from scratch


@pytest.mark.shared
def test_knowledge_base_from_before_incremental_bm25_opens_and_upgrades_on_shared_laws(tmp_path, caplog):
    src, kb = _ingested(tmp_path, "校车安全管理条例", "消防法")
    hits = kb.bm25.search(bm25_tokens("校车驾驶人"), 10)
    folder = _generation_folder(kb)
    kb.close()
    # What the older version wrote: weights and terms, no counts and no parameters.
    (folder / COUNTS).unlink()
    terms = json.loads((folder / "terms.json").read_text(encoding="utf-8"))
    old_terms = {"ids": terms["ids"], "vocab": {term: col for col, term in enumerate(terms["terms"])}}
    (folder / "terms.json").write_text(json.dumps(old_terms, ensure_ascii=False), encoding="utf-8")

    kb = KnowledgeBase(tmp_path / "kb", FakeEmbedder())
    assert not kb.bm25.updatable  # opened as saved, not rebuilt
    assert kb.bm25.search(bm25_tokens("校车驾驶人"), 10) == hits
    changed = next(src.glob("校车安全管理条例*"))
    changed.write_text(changed.read_text(encoding="utf-8") + APPENDED, encoding="utf-8")
    kb.ingest([src])
    assert "building it from scratch" in caplog.text
    assert (_generation_folder(kb) / COUNTS).exists()
    _assert_matches_fresh_build(kb)

    caplog.clear()
    shutil.copy(law("食品安全法"), src)
    kb.ingest([src])
    assert not caplog.records  # upgraded once: updated in place from now on
    _assert_matches_fresh_build(kb)
    kb.close()


@pytest.mark.shared
def test_commit_that_fails_before_the_manifest_leaves_the_previous_bm25_on_shared_laws(tmp_path, monkeypatch):
    src, kb = _ingested(tmp_path, "校车安全管理条例", "消防法")
    before = kb.bm25.search(bm25_tokens("校车驾驶人 本条为测试追加的条款"), 10)
    changed = next(src.glob("校车安全管理条例*"))
    changed.write_text(changed.read_text(encoding="utf-8") + APPENDED, encoding="utf-8")
    write = index_module._atomic_write

    def fail_on_manifest(path, content):
        if path.name == "manifest.json":
            raise OSError("simulated crash before the commit point")
        write(path, content)

    monkeypatch.setattr(index_module, "_atomic_write", fail_on_manifest)
    with pytest.raises(OSError, match="simulated crash"):
        kb.ingest([src])
    monkeypatch.undo()
    assert kb.bm25.search(bm25_tokens("校车驾驶人 本条为测试追加的条款"), 10) == before
    kb.close()

    reopened = KnowledgeBase(tmp_path / "kb", FakeEmbedder())  # the new generation's folder is left over, not committed
    assert reopened.bm25.search(bm25_tokens("校车驾驶人 本条为测试追加的条款"), 10) == before
    assert reopened.ingest([src]).updated == [changed.name]
    _assert_matches_fresh_build(reopened)
    reopened.close()
