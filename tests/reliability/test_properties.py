"""Hypothesis properties: the structure parser never crashes and accounts for every character it is given;
citation verification (extractive ``cite``/``verified`` and the LLM verifier) never lets a quote through
that is not an exact substring of its source."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from assistant.answer import CitationError, cite, verified
from assistant.ingest.loaders import normalize_whitespace
from assistant.ingest.parser import parse_structure
from assistant.llm.verify import MIN_CHECKED_QUOTE, QUOTE, CitationVerifier, Passage
from assistant.types import Chunk, Citation
from tests.citation_stub import citation_kb

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------------------------------- structure parser
HEADINGS = [
    "第一编 总则", "第二分编 通则", "第三章 学校安全", "第一节 一般规定", "第二十条", "第二十条之一 ", "第100条 ",
    "第二十五条 学校应当", "一、", "（一）", "(二)", "1、", "2.", "（1）", "①", "# ", "## 标题", "###### ",
    "校长一岗双责述职报告1", "依照本法第二十条", "第三条、第四条", "<!-- 注释 -->", "附则", "第十章", "第千零二条",
]
BODY = st.text(alphabet=st.sampled_from(list("学校应当建立安全管理制度，。；：！？、第一二三十条章节（）()#-—1234567890 \t「」")
                                     + ["\u3000", "\u00a0", "😀", "\x07", "<", ">", "𠀀"]), max_size=60)
LINE = st.one_of(BODY, st.tuples(st.sampled_from(HEADINGS), BODY).map("".join))
DOCUMENT = st.lists(LINE, max_size=40).map("\n".join)


@PROPERTY
@given(raw=DOCUMENT)
def test_the_parser_never_crashes_and_covers_every_character(raw):
    text = normalize_whitespace(raw)
    structure = parse_structure(text)
    covered = bytearray(len(text))
    for unit in structure.units:
        assert 0 <= unit.start <= unit.end <= len(text), unit
        covered[unit.start:unit.end] = b"\x01" * (unit.end - unit.start)
    for section in structure.sections:
        assert 0 <= section.start <= section.end <= len(text), section
        covered[section.start:section.end] = b"\x01" * (section.end - section.start)
    for start, end in structure.markup:
        assert 0 <= start <= end <= len(text)
        covered[start:end] = b"\x01" * (end - start)
    missed = [(i, text[i]) for i, ch in enumerate(text) if not ch.isspace() and not covered[i]]
    assert not missed, (missed[:5], text)
    starts = [u.start for u in structure.units]
    assert starts == sorted(starts)  # units come in document order


@PROPERTY
@given(raw=DOCUMENT)
def test_parsing_is_deterministic(raw):
    text = normalize_whitespace(raw)
    first, second = parse_structure(text), parse_structure(text)
    assert first.units == second.units and first.sections == second.sections


# ---------------------------------------------------------------------------------------- extractive cite
SOURCE_CHARS = st.sampled_from(list("学校应当建立健全安全管理制度落实校车驾驶人资格每年审验，。；第一二三条 \n"))
SOURCE = st.text(SOURCE_CHARS, min_size=20, max_size=200)


@PROPERTY
@given(source=SOURCE, data=st.data())
def test_cite_returns_only_exact_spans_and_refuses_a_stale_chunk(source, data):
    start = data.draw(st.integers(0, len(source) - 10))
    end = data.draw(st.integers(start + 5, len(source)))
    chunk = Chunk("c1", "d", "条例", "x.md", "第一条", source[start:end], start, end)
    a = data.draw(st.integers(0, end - start - 1))
    b = data.draw(st.integers(a + 1, end - start))
    citation = cite(1, chunk, citation_kb([chunk], source), (a, b))
    assert source[citation.start:citation.end] == citation.quote == chunk.text[a:b]
    # The stored document changed under the chunk (an edit, a bug): the quote no longer matches → refused.
    edited = source[: start + a] + data.draw(st.text(SOURCE_CHARS, min_size=1, max_size=5)) + source[start + a + 1:]
    if edited[start + a:start + b] != chunk.text[a:b]:
        try:
            cite(1, chunk, citation_kb([chunk], edited), (a, b))
        except CitationError:
            pass
        else:
            raise AssertionError("a quote that is not in the source was cited")


@PROPERTY
@given(source=SOURCE, quote=st.text(SOURCE_CHARS, min_size=1, max_size=30), start=st.integers(0, 220))
def test_verified_keeps_a_citation_only_when_its_quote_is_the_cited_span(source, quote, start):
    chunk = Chunk("c1", "d", "条例", "x.md", "第一条", source, 0, len(source))
    citation = Citation(1, "c1", "条例", "第一条", quote, "x.md", start, start + len(quote))
    kept = verified([citation], citation_kb([chunk], source))
    assert (kept == [citation]) == (source[start:start + len(quote)] == quote)


# ---------------------------------------------------------------------------------------- LLM verifier
PASSAGE_TEXT = ("第二十三条 校车驾驶人应当依照本条例的规定取得校车驾驶资格。取得校车驾驶资格应当符合下列条件："
                "取得相应准驾车型驾驶证并具有3年以上驾驶经历；最近连续3个记分周期内没有被记满分记录。")
OTHER_TEXT = "第二十六条 校车驾驶人应当每年接受公安机关交通管理部门的审验。"


def _llm_setup():
    source = "前言\n" + PASSAGE_TEXT + "\n" + OTHER_TEXT
    chunks = []
    for i, text in enumerate((PASSAGE_TEXT, OTHER_TEXT)):
        at = source.index(text)
        chunks.append(Chunk(f"c{i + 1}", "d", "校车安全管理条例", "x.md", f"第{i + 1}条", text, at, at + len(text)))
    return [Passage(i + 1, c, 0, len(c.text), (0, 10)) for i, c in enumerate(chunks)], citation_kb(chunks, source), source


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


QUOTED = st.one_of(
    st.text(st.sampled_from(list("校车驾驶人应当每年审验资格学生家长老师必须禁止，")), min_size=1, max_size=40),
    st.builds(lambda a, b: PASSAGE_TEXT[min(a, b):max(a, b)], st.integers(0, len(PASSAGE_TEXT)), st.integers(0, len(PASSAGE_TEXT))),
    st.builds(lambda a, b, c: (PASSAGE_TEXT[min(a, b):max(a, b)][:5] + c + PASSAGE_TEXT[min(a, b):max(a, b)][5:]),
              st.integers(0, len(PASSAGE_TEXT)), st.integers(0, len(PASSAGE_TEXT)), st.sampled_from(["不", "未", "禁止", "无需"])),
)
SENTENCE = st.builds(lambda lead, q, n, tail: f"{lead}「{q}」[{n}]{tail}",
                     st.sampled_from(["", "根据规定，", "条例要求"]), QUOTED, st.integers(1, 3), st.sampled_from(["。", "；", "。\n"]))


@PROPERTY
@given(sentences=st.lists(SENTENCE, min_size=1, max_size=6))
def test_the_llm_verifier_never_shows_or_cites_a_quote_missing_from_the_sources(sentences):
    passages, kb, source = _llm_setup()
    verifier = CitationVerifier(passages, kb)
    verifier.feed("".join(sentences))
    verifier.finish()
    passage_texts = [_squeeze(p.text) for p in passages]
    for match in QUOTE.finditer(verifier.text):
        quoted = match.group(1) if match.group(1) is not None else match.group(2)
        if len(_squeeze(quoted)) >= MIN_CHECKED_QUOTE:
            assert any(_squeeze(quoted) in text for text in passage_texts), (quoted, verifier.text)
    for citation in verifier.citations():
        assert source[citation.start:citation.end] == citation.quote
        assert citation.quote in PASSAGE_TEXT + OTHER_TEXT


@PROPERTY
@given(noise=st.text(st.sampled_from(list("校车驾驶人家长老师学生必须禁止应当")), min_size=MIN_CHECKED_QUOTE, max_size=30))
def test_an_invented_quote_is_removed_and_reported(noise):
    passages, kb, _ = _llm_setup()
    assume(_squeeze(noise) not in _squeeze(PASSAGE_TEXT) and _squeeze(noise) not in _squeeze(OTHER_TEXT))
    verifier = CitationVerifier(passages, kb)
    verifier.feed(f"条例规定「{noise}」[1]。")
    verifier.finish()
    assert f"「{noise}」" not in verifier.text
    assert verifier.removed
