"""Fact preservation and evidence checks for any draft, template or LLM: every number and name the user
gave must appear; a number that is neither the user's nor in a cited passage is flagged; 文号 the user
typed that no ingested document carries are reported, never cited."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import lru_cache

from assistant.answer import verified
from assistant.draft.facts import clean_text, split_facts
from assistant.draft.model import Block, Draft
from assistant.draft.rules import Rules, load_rules
from assistant.index import KnowledgeBase
from assistant.prompts import render
from assistant.types import Citation

_ARABIC = re.compile(r"\d+(?:[.,．]\d+)*%?")
_MEASURE = "所个次名人场项期台套处间位班类批家条份本元年月日天届级万亿"
_CHINESE = re.compile(rf"[零〇一二两三四五六七八九十百千万亿]+(?:[{_MEASURE}]|小时|学期|周)")
_QUOTED = re.compile(r"《([^》]{1,40})》|“([^”]{1,30})”|「([^」]{1,30})」|\"([^\"]{1,30})\"")
_INSTITUTION = ("幼儿园", "小学", "中学", "中心校", "学校", "教育局", "中心")
_PROPER = ("nr", "nrfg", "nrt", "ns", "nt", "nz")
# Enumerations and citation markers the templates add: 「1．」 at a line start, 「[3]」.
_ENUMERATION = re.compile(r"^\s*\d+[．.、]|\[\d+\]", re.M)
_TOO_COMMON = {"一个", "一次", "一项", "一年", "一批", "一名"}  # everyday prose, not a claimed figure


@dataclass(frozen=True, slots=True)
class FactCheck:
    """What a draft lost or added. Empty tuples mean the draft keeps every fact and adds no number."""

    missing_facts: tuple[str, ...] = ()  # facts not found verbatim
    missing_items: tuple[str, ...] = ()  # numbers and names of those facts that the draft lacks
    unsupported_numbers: tuple[str, ...] = ()  # numbers in neither the facts nor the cited passages

    @property
    def ok(self) -> bool:
        return not (self.missing_items or self.unsupported_numbers)

    def notices(self) -> list[str]:
        """User-facing notices (prompts/draft.yaml); a reworded fact that kept its numbers and names is fine."""
        out = [render("draft", "notice_missing_item", item=item) for item in self.missing_items]
        out += [render("draft", "notice_unsupported_number", number=n) for n in self.unsupported_numbers]
        return out


def check_facts(facts: str, draft_text: str, citations: Iterable[Citation] = (), *, allowed: Iterable[str] = ()) -> FactCheck:
    """Check that ``draft_text`` preserves the user's ``facts`` and invents no numbers.

    Args:
        facts: the user's facts as they typed them.
        draft_text: the draft's full text (body, without the 依据 list).
        citations: the draft's verified citations; numbers in their quotes, titles and sections are supported.
        allowed: other strings whose numbers are supported (unit name, year…).

    Returns:
        A FactCheck; ``ok`` is True when nothing is missing and no number is unsupported.
    """
    facts_text, _ = clean_text(facts)
    body = _squash(draft_text)
    missing_facts: list[str] = []
    missing_items: list[str] = []
    for fact in split_facts(facts_text):
        if _squash(fact.text) in body:
            continue
        missing_facts.append(fact.text)
        for item in (*numbers_in(fact.text), *names_in(fact.text)):
            if _squash(item) not in body and item not in missing_items:
                missing_items.append(item)
    support = " ".join([facts_text, *allowed, *(f"{c.quote} {c.doc_title} {c.section}" for c in citations)])
    supported = set(numbers_in(support))
    unsupported = [n for n in numbers_in(_ENUMERATION.sub(" ", draft_text)) if n not in supported and n not in _TOO_COMMON]
    return FactCheck(tuple(missing_facts), tuple(missing_items), tuple(dict.fromkeys(unsupported)))


def numbers_in(text: str) -> list[str]:
    """Arabic numbers (12, 3.5, 80%) and Chinese numbers before a measure word (三所, 两次, 十二名)."""
    found = [m.group(0) for m in _ARABIC.finditer(text)] + [m.group(0) for m in _CHINESE.finditer(text)]
    return list(dict.fromkeys(found))


def names_in(text: str) -> list[str]:
    """Names in a fact: quoted titles and terms, person/place/organisation words, school names."""
    names = [next(g for g in m.groups() if g) for m in _QUOTED.finditer(text)]
    tokens = list(_pos_tokenizer().cut(text))
    for i, token in enumerate(tokens):
        word, flag = token.word, token.flag
        if flag in _PROPER and len(word) >= 2:
            names.append(word)
        if word.endswith(_INSTITUTION) and i > 0 and len(tokens[i - 1].word) >= 2 and tokens[i - 1].flag[:1] in {"n", "j"}:
            names.append(tokens[i - 1].word + word)
    return list(dict.fromkeys(n for n in names if n.strip()))


def doc_numbers_in(text: str, rules: Rules | None = None) -> list[str]:
    rules = rules or load_rules()
    return list(dict.fromkeys(m.group(0) for m in rules.doc_number.finditer(text)))


def unknown_doc_numbers(text: str, kb: KnowledgeBase, rules: Rules | None = None) -> list[str]:
    """文号 in ``text`` that no ingested document carries (in its metadata or its text)."""
    unknown = []
    for number in doc_numbers_in(text, rules):
        key = _squash(number)
        if not any(key == _squash(d.meta.doc_number) or key in _squash(d.text) for d in kb.docs.values()):
            unknown.append(number)
    return unknown


def verify_draft(draft: Draft, kb: KnowledgeBase, facts: str) -> Draft:
    """Re-verify a draft (e.g. an LLM's): drop citations whose quote is not exactly its source, remove
    their [n] markers, and add fact-preservation notices."""
    good = {c.n for c in verified(draft.citations, kb)}
    dropped = [c.n for c in draft.citations if c.n not in good]
    sections = []
    for s in draft.sections:
        blocks = tuple(_drop_markers(b, dropped) for b in s.blocks)
        sections.append(replace(s, blocks=blocks, citations=tuple(c for c in s.citations if c.n in good)))
    checked = replace(draft, sections=tuple(sections))
    notices = list(draft.notices)
    if dropped:
        notices.append(render("draft", "notice_dropped_citations", count=len(dropped)))
    notices += check_facts(facts, checked.text, checked.citations, allowed=(draft.unit, str(draft.year))).notices()
    return replace(checked, notices=tuple(dict.fromkeys(notices)))


def _drop_markers(block: Block, dropped: list[int]) -> Block:
    if not dropped:
        return block
    text = re.sub(r"\[(\d+)\]", lambda m: "" if int(m.group(1)) in dropped else m.group(0), block.text)
    return replace(block, text=text, cite=None if block.cite in dropped else block.cite)


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


@lru_cache(maxsize=1)
def _pos_tokenizer():
    """Part-of-speech tagging on our own jieba instance (loaded only when a fact was reworded)."""
    import jieba.posseg

    from assistant.text import get_jieba

    return jieba.posseg.POSTokenizer(get_jieba())

