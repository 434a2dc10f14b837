"""Query-side word lists and tokenisation helpers."""

from importlib import resources

import yaml

from assistant.text import content_words, in_legal_terms, join_phrases, question_fillers, thesaurus


def test_join_phrases_puts_split_pieces_back_together():
    words = ["学校", "安排", "跟", "车", "老师", "一路上"]
    assert join_phrases(words, ["跟车", "跟车老师"]) == ["学校", "安排", "跟车老师", "一路上"]


def test_join_phrases_leaves_whole_words_and_unrelated_phrases_alone():
    words = ["校车", "驾驶人", "消防安全"]
    assert join_phrases(words, ["校车", "消防", "跟车老师"]) == words


def test_a_question_is_reworded_in_the_terms_the_texts_use():
    # the longer everyday word wins over the word inside it (跟车老师, not 老师)
    assert in_legal_terms("学校安排我当跟车老师，我要负责哪些事？") == "学校安排我当随车照管人员，我要负责哪些事？"
    assert in_legal_terms("出事后一把手能走开吗") == "事故后主要负责人能擅离职守吗"
    # every occurrence is replaced; a term the question already uses is skipped for the next one
    assert in_legal_terms("老师和老师") == "教师和教师"
    assert in_legal_terms("老师和教师") == "教职工和教师"


def test_a_question_without_everyday_words_is_not_reworded():
    assert in_legal_terms("校车驾驶人应当具备哪些条件") == "校车驾驶人应当具备哪些条件"
    assert in_legal_terms("") == ""


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
