"""One retriever contract, run against sparse, dense and hybrid; plus query planning."""

import pytest

from assistant.errors import RetrievalError
from assistant.retrieve import HybridRetriever, RetrieverParams, plan_query
from tests.conftest import assistant_over, make_assistant

DOCS = {
    "校车条例.md": "# 校车条例\n\n第一条 校车驾驶人应当取得相应准驾车型驾驶证。\n\n第二条 随车照管人员应当清点乘车学生人数。\n",
    "食品办法.md": "# 食品办法\n\n第一条 学校食堂应当对每餐次食品留样。\n\n第二条 集中用餐单位应当建立食品安全管理制度。\n",
    "欺凌规定.md": "# 欺凌规定\n\n第一条 学校应当建立学生欺凌防控工作制度。\n\n第二条 学生欺凌行为应当立即制止并通知监护人。\n",
}


@pytest.fixture(scope="module")
def small_assistant(tmp_path_factory):
    assistant = assistant_over(tmp_path_factory.mktemp("small"), DOCS)
    yield assistant
    assistant.close()


@pytest.mark.parametrize("mode", ["sparse", "dense", "hybrid"])
@pytest.mark.parametrize(
    ("query", "source", "section"),
    [
        ("食堂每餐次留样", "食品办法.md", "第一条"),
        ("校车驾驶人驾驶证", "校车条例.md", "第一条"),
        ("学生欺凌防控制度", "欺凌规定.md", "第一条"),
    ],
)
def test_contract_best_article_first(small_assistant, mode, query, source, section):
    retriever = HybridRetriever(small_assistant.kb, mode=mode)
    hits = retriever.search(query, k=3)
    assert hits[0].chunk.source == source and hits[0].chunk.section == section
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:], strict=False))
    for h in hits:
        assert small_assistant.kb.docs[h.chunk.doc_id].text[h.chunk.start : h.chunk.end] == h.chunk.text


@pytest.mark.parametrize("mode", ["sparse", "dense", "hybrid"])
def test_contract_k_limits_and_articles_are_unique(small_assistant, mode):
    hits = HybridRetriever(small_assistant.kb, mode=mode).search("学校应当建立制度", k=4)
    assert 1 <= len(hits) <= 4
    keys = [(h.chunk.doc_id, h.chunk.section) for h in hits]
    assert len(keys) == len(set(keys))


def test_thesaurus_maps_everyday_words_to_legal_terms(small_assistant):
    plan = plan_query("孩子被同学欺负了怎么办")
    assert "欺凌" in plan.expansions and "未成年人" in plan.expansions
    hits = small_assistant.search("孩子被同学欺负了老师该怎么办", k=2)
    assert hits[0].chunk.source == "欺凌规定.md"


def test_role_words_are_context_not_topic():
    plan = plan_query("学校发现学生被欺凌，班主任该怎么做？", role="班主任")
    assert "班主任" in plan.role_words and "欺凌" not in plan.role_words
    tokens, weights = plan.sparse_tokens()
    assert weights["班主任"] < 1.0 and "欺凌" not in weights


def test_bad_queries_are_refused_with_a_reason(small_assistant):
    with pytest.raises(RetrievalError, match="empty"):
        small_assistant.search("   ")
    with pytest.raises(RetrievalError, match="unknown role"):
        small_assistant.search("食堂", role="厨师长")
    with pytest.raises(RetrievalError, match="out of range"):
        small_assistant.search("食堂", k=0)


def test_langchain_retriever_adapter_returns_documents(small_assistant):
    from assistant.retrieve import as_langchain_retriever

    retriever = as_langchain_retriever(small_assistant.retriever, k=2)
    docs = retriever.invoke("校车驾驶人驾驶证")
    assert docs[0].page_content.startswith("第一条 校车驾驶人")
    assert docs[0].metadata["source"] == "校车条例.md" and docs[0].metadata["section"] == "第一条"


def test_query_vectors_are_remembered_until_forgotten(small_assistant):
    embedder = small_assistant.kb.embedder
    calls = []
    original = embedder.embed_query

    def counting(text):
        calls.append(text)
        return original(text)

    embedder.embed_query = counting
    try:
        retriever = HybridRetriever(small_assistant.kb)
        first = retriever.search("食堂留样多少天", k=3)
        second = retriever.search("食堂留样多少天", k=3)
        assert [h.chunk.chunk_id for h in first] == [h.chunk.chunk_id for h in second]
        # the question as asked, and reworded in the texts' terms (食堂 → 集中用餐), once each (on two threads)
        assert sorted(calls) == sorted(["食堂留样多少天", "集中用餐留样多少天"])
        retriever.forget_queries()
        retriever.search("食堂留样多少天", k=3)
        assert len(calls) == 4
    finally:
        del embedder.embed_query


def test_a_question_is_searched_again_in_the_texts_own_words_in_hybrid_mode_only(small_assistant):
    embedder = small_assistant.kb.embedder
    calls = []
    original = embedder.embed_query
    embedder.embed_query = lambda text: calls.append(text) or original(text)
    try:
        HybridRetriever(small_assistant.kb).search("学校安排我当跟车老师要负责哪些事", k=3)
        assert sorted(calls) == sorted(["学校安排我当跟车老师要负责哪些事", "学校安排我当随车照管人员要负责哪些事"])
        calls.clear()
        HybridRetriever(small_assistant.kb).search("校车驾驶人的条件", k=3)  # no everyday word to replace
        assert calls == ["校车驾驶人的条件"]
        calls.clear()
        HybridRetriever(small_assistant.kb, mode="dense").search("学校安排我当跟车老师要负责哪些事", k=3)
        assert calls == ["学校安排我当跟车老师要负责哪些事"]
        calls.clear()
        HybridRetriever(small_assistant.kb, RetrieverParams(w_reworded=0)).search("跟车老师要做什么", k=3)
        assert calls == ["跟车老师要做什么"]
    finally:
        del embedder.embed_query


def test_evidence_signals_are_computed_for_ask_but_not_for_search(small_assistant, monkeypatch):
    import assistant.retrieve as retrieve_module

    calls = []
    real = retrieve_module.topic_coverage
    monkeypatch.setattr(retrieve_module, "topic_coverage", lambda *args: calls.append(args) or real(*args))
    hits = small_assistant.search("食堂每餐次留样", k=3)
    assert hits and calls == []
    answer = small_assistant.ask("学校食堂每餐次食品要留样吗？")
    assert answer.grounded and len(calls) == 1


def test_warm_up_loads_the_vector_tables_and_forgets_its_question(small_assistant):
    from assistant.index import COLLECTION, WINDOWS

    fresh = make_assistant(small_assistant.kb.root)
    try:
        assert fresh.kb._tables == {}
        fresh.warm_up()
        assert fresh.kb._tables.get(COLLECTION) is not None and fresh.kb._tables.get(WINDOWS) is not None
        assert len(fresh.retriever._vectors) == 0
    finally:
        fresh.close()
