"""Evidence checks behind the grounded decision."""

from assistant.bm25 import BM25Index
from assistant.grounding import missing_quantity, topic_coverage
from assistant.text import bm25_tokens

PASSAGES = ["第三条 学校食堂应当每餐次留样，留样食品应当冷藏保存。", "第九条 国家实行优惠政策，支持学校建设。"]


def _index():
    return BM25Index.build(["a", "b"], [bm25_tokens(p) for p in PASSAGES])


def test_quantity_asked_but_not_stated_is_missing():
    assert missing_quantity("食堂留样要留多少克？", PASSAGES)
    assert not missing_quantity("食堂留样要留多少克？", ["留样食品不少于125克。"])
    assert not missing_quantity("食堂要不要留样？", PASSAGES)  # no number asked for
    assert not missing_quantity("批评了好几次都不改怎么办", PASSAGES)  # 「好几次」 is not a question about a count


def test_topic_coverage_counts_subject_words_not_frame_words():
    bm25 = _index()
    covered = topic_coverage("食堂饭菜要不要留样", PASSAGES, (), bm25)
    uncovered = topic_coverage("高考加分政策是什么", PASSAGES, (), bm25)
    assert covered > 0.5
    # 「政策」 occurs in the passages but only frames the question; 「高考」 is the subject and is absent
    assert uncovered == 0.0
