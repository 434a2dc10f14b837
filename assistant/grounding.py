"""Evidence checks behind the grounded decision: does the retrieved text speak to what was asked?

Two failure modes dominate unanswerable questions (measured on eval/dev.jsonl): the question is about
something the texts never discuss (高考加分、学区划片), or it asks for a number the texts do not give
(「留样要留多少克」 when the law only says 留样). Similarity scores barely separate either from answerable
paraphrases; these two checks do.
"""

from __future__ import annotations

import re

from assistant.bm25 import BM25Index, idf_of
from assistant.text import get_pos_tagger, stopwords, thesaurus

_NUM = r"(?:[0-9０-９]+(?:\.[0-9]+)?|[一二两三四五六七八九十百千万]+)"
# (what the question asks for, the unit a stated number must carry)
_QUANTITIES = (
    (r"多少钱|几块钱|多少元|收多少|罚.{0,6}多少|赔.{0,4}多少|保费.{0,3}多少|工资.{0,8}多少|津贴.{0,8}多少", r"元"),
    (r"几天|多少天", r"[日天]"),
    (r"(?<!好)几次|多少次", r"次"),
    (r"多少分|几分(?!之)", r"分"),
    (r"几个月|多少个月", r"个?月"),
    (r"几名|几个人|多少人|多少个(?:孩子|学生|人)|多少名|几个专职", r"[名人]"),
    (r"百分之|比例是|占.{0,6}多少", r"%|％|百分之|分之"),
    (r"几点", r"[时点]"),
    (r"多少克|几克", r"克"),
    (r"多少个?小时|几个?小时|几个钟头", r"小时"),
    (r"几篇", r"篇"),
    (r"多少节|几节", r"节"),
    (r"几岁|多少岁", r"周?岁"),
    (r"多少公斤|几公斤", r"公斤|千克"),
    (r"几年|多少年", r"年"),
)
_TOPIC_POS = ("n", "vn", "v", "a")
# Words that frame a question about rules in general; every policy text contains them, so they say
# nothing about whether the texts cover the question's subject.
_FRAME_WORDS = frozenset("政策 规定 法律 法规 文件 要求 标准 情况 问题 方面 内容 条款 依据 说法 意思 东西 事情 怎么样 具体".split())


def missing_quantity(question: str, passages: list[str]) -> bool:
    """True when the question asks for a quantity and no passage states one in the asked-for unit."""
    text = "".join(passages)
    for asked, unit in _QUANTITIES:
        if re.search(asked, question):
            return not re.search(rf"{_NUM}\s*(?:{unit})", text)
    return False


def topic_coverage(question: str, passages: list[str], role_words: tuple[str, ...], bm25: BM25Index) -> float:
    """Idf-weighted share of the question's topic words (nouns count fully, verbs and adjectives half)
    that appear in the passages, directly, through the thesaurus, or by most of their characters."""
    text = "".join(passages)
    stop, thes = stopwords(), thesaurus()
    total = found = 0.0
    for word, flag in get_pos_tagger().cut(question):
        if len(word) < 2 or word in stop or word in role_words or word in _FRAME_WORDS or not flag.startswith(_TOPIC_POS):
            continue
        weight = min(idf_of(bm25, word), 8.0) * (1.0 if flag.startswith("n") or flag == "vn" else 0.5)
        total += weight
        if (
            word in text
            or any(term in text for term in thes.get(word, ()))
            or (len(word) >= 3 and sum(word[i : i + 2] in text for i in range(len(word) - 1)) >= len(word) - 2)
        ):
            found += weight
    return found / total if total else 1.0
