"""Query-side word lists and tokenisation helpers."""

from importlib import resources

import yaml

from assistant.text import content_words, join_phrases, question_fillers, thesaurus


def test_join_phrases_puts_split_pieces_back_together():
    words = ["学校", "安排", "跟", "车", "老师", "一路上"]
    assert join_phrases(words, ["跟车", "跟车老师"]) == ["学校", "安排", "跟车老师", "一路上"]


def test_join_phrases_leaves_whole_words_and_unrelated_phrases_alone():
    words = ["校车", "驾驶人", "消防安全"]
    assert join_phrases(words, ["校车", "消防", "跟车老师"]) == words


def test_fillers_are_spoken_words_not_topics():
    fillers = question_fillers()
    assert {"到底", "这块"} <= fillers
    assert not fillers & {"安全", "学校", "可能", "报告"}
    assert {"到底", "这块"} <= set(content_words("学校安全这块我到底要负哪些责"))


class _DuplicateKeyLoader(yaml.SafeLoader):
    def construct_mapping(self, node, deep=False):
        keys = [self.construct_object(k, deep=deep) for k, _ in node.value]
        duplicates = {k for k in keys if keys.count(k) > 1}
        assert not duplicates, f"thesaurus keys listed twice (the later one silently wins): {duplicates}"
        return super().construct_mapping(node, deep=deep)


def test_thesaurus_lists_each_key_once_with_legal_terms():
    text = resources.files("assistant").joinpath("data", "thesaurus.yaml").read_text(encoding="utf-8")
    yaml.load(text, Loader=_DuplicateKeyLoader)  # noqa: S506 - a SafeLoader subclass
    entries = thesaurus()
    assert all(terms for terms in entries.values())
    assert "疏散" in entries["撤离"] and "超员" in entries["超载"]
    assert "群众" in entries["老百姓"] and "公众" in entries["老百姓"] and "超员" in entries["多拉"]
