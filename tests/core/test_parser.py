"""Structure parser and chunker, on the real shared law texts and on synthetic edge cases."""

import re
from pathlib import Path

import pytest

from assistant.index import build_document
from assistant.ingest.loaders import load_file
from assistant.ingest.parser import chinese_to_int, parse_structure
from tests.conftest import CORPUS, LAWS, SEEDS

LAW_FILES = sorted(LAWS.glob("*.md"))
ARTICLE_LINE = re.compile(r"^第[零〇一二三四五六七八九十百千]+条(?:之[一二三四五六七八九十]+)?[\s\u3000]", re.M)


def _covered(text: str, spans) -> None:
    """Every non-space character of the body lies in one of the spans: no text is lost."""
    mask = bytearray(len(text))
    for start, end in spans:
        mask[start:end] = b"\x01" * (end - start)
    lost = "".join(ch for ch, m in zip(text, mask, strict=True) if not m and not ch.isspace())
    assert lost == ""


@pytest.mark.shared
def test_law_files_are_all_present():
    assert len(LAW_FILES) == 22


@pytest.mark.shared
@pytest.mark.parametrize("path", LAW_FILES, ids=lambda p: p.stem[:12])
def test_every_article_of_every_law_is_its_own_unit(path: Path):
    text = load_file(path).text
    structure = parse_structure(text)
    articles = [u for u in structure.units if u.kind == "article"]
    expected = len(ARTICLE_LINE.findall(text))
    assert len(articles) == expected
    assert expected > 10
    # each article unit starts with its own number and its path ends with it
    for unit in articles:
        body = text[unit.start : unit.end]
        assert body.startswith(unit.path[-1])
        assert re.fullmatch(r"第[零〇一二三四五六七八九十百千]+条(之[一二三四五六七八九十]+)?", unit.path[-1])
    # articles under a chapter heading carry it in their path
    chapters = {s.label for s in structure.sections if s.style == "chapter"}
    chaptered = [u for u in articles if any(p in chapters for p in u.path[:-1])]
    if "## 第" in text:
        assert len(chaptered) == len(articles)
    _covered(text, [(u.start, u.end) for u in structure.units] + [(s.start, s.end) for s in structure.sections] + structure.markup)


@pytest.mark.shared
def test_safety_production_law_has_119_articles_with_chapter_paths():
    path = next(LAWS.glob("安全生产法*.md"))
    doc, chunks = build_document(path, load_file(path).text, "x", "utf-8")
    articles = [c for c in chunks if c.kind == "article"]
    assert len({c.section for c in articles}) == 119
    assert doc.meta.title == "安全生产法" or doc.meta.title.endswith("安全生产法")
    assert doc.meta.kind == "law" and doc.meta.date == "2021-06-10"
    first = next(c for c in articles if c.section.endswith("第五条"))
    assert first.section == "第一章 总则 > 第五条"
    assert first.text.startswith("第五条 生产经营单位的主要负责人是本单位安全生产第一责任人")
    # spans reproduce the text exactly
    for c in chunks:
        assert doc.text[c.start : c.end] == c.text


@pytest.mark.shared
def test_food_safety_law_sections_nest_under_chapters():
    path = next(LAWS.glob("食品安全法*.md"))
    _, chunks = build_document(path, load_file(path).text, "x", "utf-8")
    nested = [c.section for c in chunks if " > 第一节" in c.section]
    assert nested and all(re.match(r"^第[四五六七八九十]+章 .+ > 第一节 .+ > 第.+条$", s) for s in nested)


@pytest.mark.shared
def test_customer_document_reports_nest_their_headings():
    text = load_file(SEEDS / "000_ef7ac5fda583e90f.txt").text
    structure = parse_structure(text)
    assert structure.title == "校长一岗双责述职报告范文"
    tops = [s.label for s in structure.sections if s.style == "title"]
    assert tops[1:] == ["校长一岗双责述职报告1", "校长一岗双责述职报告2", "校长一岗双责述职报告3"]
    paths = [u.path for u in structure.units]
    assert ("校长一岗双责述职报告1", "一、学校安全目标责任管理机制", "1、") in paths
    assert ("校长一岗双责述职报告2", "三、落实推进“一岗双责”制的要求、举措", "(二)明确职责,强化责任", "1、") in paths
    # the （1）…（4） items of 七 stay under 3、 and never become siblings of 七
    seven = [p for p in paths if len(p) > 1 and p[1].startswith("七、")]
    assert seven and all(p[0] == "校长一岗双责述职报告1" for p in seven)
    assert not any(len(p) == 2 and p[-1].startswith("(") for p in paths)
    _covered(text, [(u.start, u.end) for u in structure.units] + [(s.start, s.end) for s in structure.sections])


def test_bundled_corpus_documents_have_metadata():
    for path in sorted(CORPUS.glob("*.txt")):
        doc, chunks = build_document(path, load_file(path).text, "x", "utf-8")
        assert doc.meta.title == path.stem
        assert doc.meta.kind in {"bureau_document", "sample_report"}
        assert len(chunks) >= 3


@pytest.mark.parametrize(
    ("numeral", "value"),
    [("一", 1), ("十", 10), ("十二", 12), ("二十", 20), ("一百零三", 103), ("一千零二", 1002), ("两千", 2000), ("123", 123)],
)
def test_chinese_numerals(numeral, value):
    assert chinese_to_int(numeral) == value


def test_synthetic_edge_cases():
    text = (
        "# 某某条例\n\n"
        "## 第一章 总则\n\n"
        "第一条 为了保障学生安全，制定本条例。\n\n"
        "第二条\n学校应当依照本条例第十条的规定履行职责。\n"
        "第十条规定的事项，由学校负责。\n\n"
        "第十条之一 学校应当建立安全台账。\n\n"
        "## 第二章 附则\n\n"
        "第一千零二条 本条例自公布之日起施行：\n（一）学校；\n（二）幼儿园。\n\n"
        "一、补充说明\n\n"
        "说明正文，依照本条例第一条执行。\n"
    )
    structure = parse_structure(text)
    units = {u.path: text[u.start : u.end] for u in structure.units}
    assert structure.title == "某某条例"
    assert ("第一章 总则", "第一条") in units
    # a body on the line after the number, and a cross-reference line that is not an article
    second = units[("第一章 总则", "第二条")]
    assert "第十条规定的事项" in second
    assert units[("第一章 总则", "第十条之一")] == "第十条之一 学校应当建立安全台账。"
    # items (一)(二) inside an article stay in it
    assert units[("第二章 附则", "第一千零二条")].endswith("（二）幼儿园。")
    # an outline heading after articles nests under the chapter, not under the last article
    assert ("第二章 附则", "一、补充说明") in units
    assert units[("第二章 附则", "一、补充说明")].endswith("依照本条例第一条执行。")


def test_article_number_without_space_only_in_sequence():
    text = "第一条学校应当保障安全。\n第二条学校应当开展教育。\n第五条规定的情形除外。\n"
    structure = parse_structure(text)
    assert [u.path[-1] for u in structure.units] == ["第一条", "第二条"]
    assert text[structure.units[-1].start : structure.units[-1].end].endswith("第五条规定的情形除外。")


def test_chapter_title_without_its_number_starts_a_chapter():
    # web copies of some laws print 「法律责任」 alone, after an invisible line, between two articles
    text = (
        "## 第一章 总则\n\n第一条 为了保障学生安全，制定本条例。\n\n第二条 学校应当建立安全制度。\n\n\u200b\n\n"
        "网络素养促进\n\n第三条 学校应当开展网络素养教育。\n\n\u200b\n\n法律责任\n\n"
        "第四条 违反本条例第三条规定的，责令改正。\n\n附 则\n\n第五条 本条例自公布之日起施行。\n"
    )
    structure = parse_structure(text)
    assert [u.path for u in structure.units] == [
        ("第一章 总则", "第一条"), ("第一章 总则", "第二条"), ("网络素养促进", "第三条"), ("法律责任", "第四条"), ("附 则", "第五条")]
    assert text[structure.units[1].start : structure.units[1].end] == "第二条 学校应当建立安全制度。"  # the invisible line stays out
    _covered(text.replace("\u200b", " "), [(u.start, u.end) for u in structure.units]
             + [(s.start, s.end) for s in structure.sections])


def test_short_line_inside_an_article_is_not_a_chapter():
    # a short line followed by running text, and one followed by an article out of sequence, stay in their article
    text = "第一条 学校应当配备下列人员：\n\n安全保卫人员\n\n以及校医。\n\n第二条 学校应当：\n\n开展演练\n\n第五条规定的除外。\n"
    units = parse_structure(text).units
    assert [u.path for u in units] == [("第一条",), ("第二条",)]
    assert "安全保卫人员" in text[units[0].start : units[0].end] and text[units[1].start : units[1].end].endswith("第五条规定的除外。")


@pytest.mark.shared
def test_unnumbered_chapters_of_the_minors_online_protection_regulation():
    path = next(LAWS.glob("未成年人网络保护条例*.md"))
    structure = parse_structure(path.read_text(encoding="utf-8"))
    chapters = [s.label for s in structure.sections if s.style == "chapter"]
    assert chapters == ["第一章 总 则", "网络素养促进", "网络信息内容规范", "个人信息网络保护", "网络沉迷防治", "法律责任", "附 则"]
    penalty = [u.path for u in structure.units if u.path[0] == "法律责任"]
    assert penalty[0] == ("法律责任", "第五十条") and len(penalty) == 9  # 第五十条 … 第五十八条
