"""述职报告 drafting: structure, verbatim facts, exact citations, empty and hostile facts, Word export."""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
from docx import Document

from assistant.draft import (
    Drafter,
    DraftInputError,
    DraftRequest,
    check_facts,
    classify_fact,
    draft_intent,
    kinds_of,
    parse_section,
    split_facts,
    to_docx,
    to_markdown,
    verify_draft,
)
from tests.conftest import CORPUS, make_assistant

HEADINGS = ["一、履职基本情况", "二、主要工作与成效", "三、存在的问题与不足", "四、下一步工作打算"]
FACTS_FILE = Path(__file__).parent / "data" / "draft_facts_report3.txt"
# From the customer's third report (校长一岗双责述职报告3), filed by the section they belong to.
FACTS_BY_SECTION = {
    "一、履职基本情况": ["本人深刻认识到，校长是学校安全工作的第一责任人，必须坚持“党政同责、一岗双责”。"],
    "二、主要工作与成效": [
        "对崔村幼儿园、南菜园幼儿园、东槐幼儿园园舍的房顶、围墙等进行了加固",
        "对邢村幼儿园、马蹄湾小学的校舍配套设施加快施工进度，确保按期搬迁",
        "为各单位增设了监控头，并将监控联网",
        "组织校长参加了保定市组织的魏书生报告会和杜郎口中学校长崔其升的讲座",
        "一铺东小学陈亚娟的录像课在“家长学校优质课”评选中获一等奖",
        "全镇六年级统测成绩比去年上升三个位次",
    ],
    "三、存在的问题与不足": ["学校、教师发展还不太均衡", "部分村小安全教育流于形式"],
    "四、下一步工作打算": ["在新的学年将注重抓好重点校、骨干教师，以重点校带领周边学校"],
}
FAKE_NUMBER = "教安〔2099〕99号"


@pytest.fixture(scope="module")
def laws(laws_kb_dir):
    assistant = make_assistant(laws_kb_dir)
    yield assistant
    assistant.close()


@pytest.fixture(scope="module")
def drafter(laws) -> Drafter:
    return Drafter(laws.kb, laws.retriever)


@pytest.fixture(scope="module")
def report3(drafter):
    return drafter.draft(DraftRequest("校长", "某某镇中心校", 2026, FACTS_FILE.read_text(encoding="utf-8")))


def docx_paragraphs(data: bytes) -> list[str]:
    return [p.text for p in Document(io.BytesIO(data)).paragraphs]


def assert_exact(citation, kb) -> None:
    doc = kb.docs[kb.chunks[citation.chunk_id].doc_id]
    assert citation.quote and citation.quote in doc.text
    assert doc.text[citation.start : citation.end] == citation.quote


# ------------------------------------------------------------------ golden structure (customer scenario)
def test_report3_docx_has_the_four_headings_in_order_and_every_fact_under_its_heading(report3, laws):
    paragraphs = docx_paragraphs(to_docx(report3, kind_of=kinds_of(laws.kb, report3)))
    assert paragraphs[0] == "某某镇中心校校长2026年度学校安全工作“一岗双责”述职报告"
    at = [paragraphs.index(h) for h in HEADINGS]
    assert at == sorted(at)
    basis = paragraphs.index("附：引用依据")
    bounds = [*at, basis]
    for i, heading in enumerate(HEADINGS):
        body = "\n".join(paragraphs[bounds[i] + 1 : bounds[i + 1]])
        for fact in FACTS_BY_SECTION[heading]:
            assert fact in body, (heading, fact)


def test_report3_every_section_states_a_cited_duty_with_an_exact_quote(report3, laws):
    paragraphs = docx_paragraphs(to_docx(report3, kind_of=kinds_of(laws.kb, report3)))
    text = "\n".join(paragraphs)
    assert [s.heading for s in report3.sections] == HEADINGS
    for section in report3.sections:
        assert section.citations, section.heading
        for c in section.citations:
            assert_exact(c, laws.kb)
            assert f"“{c.quote}" in section.text and f"[{c.n}]" in section.text
            assert f"[{c.n}] 《{c.doc_title}》" in text  # the numbered 依据 list
    numbers = [c.n for c in report3.citations]
    assert numbers == list(range(1, len(numbers) + 1))
    assert len({c.chunk_id for c in report3.citations}) == len(numbers)  # no article cited twice


def test_report3_keeps_facts_verbatim_and_invents_no_numbers(report3):
    assert report3.notices == ()
    check = check_facts(FACTS_FILE.read_text(encoding="utf-8"), report3.text, report3.citations, allowed=("2026",))
    assert check.ok and not check.missing_facts
    assert "三个位次" in report3.text and "陈亚娟" in report3.text


def test_report3_docx_looks_like_an_official_document(report3):
    document = Document(io.BytesIO(to_docx(report3)))
    section = document.sections[0]
    assert round(section.page_width.mm) == 210 and round(section.page_height.mm) == 297
    assert [round(m.mm) for m in (section.top_margin, section.bottom_margin, section.left_margin, section.right_margin)] == [37, 35, 28, 26]

    def east_asia(paragraph) -> str:
        fonts = paragraph.runs[0]._element.rPr.rFonts
        return fonts.get("{http://schemas.openxmlformats.org/wordprocessingml/2006/main}eastAsia")

    by_text = {p.text: p for p in document.paragraphs}
    assert east_asia(document.paragraphs[0]) == "方正小标宋简体"
    assert east_asia(by_text["一、履职基本情况"]) == "黑体"
    assert east_asia(by_text["（一）职责认识"]) == "楷体_GB2312"
    assert east_asia(by_text[f"1．{FACTS_BY_SECTION['二、主要工作与成效'][0]}"]) == "仿宋_GB2312"
    assert document.paragraphs[1].runs[0].font.size.pt == 16
    with zipfile.ZipFile(io.BytesIO(to_docx(report3))) as package:
        fonts = package.read("word/fontTable.xml").decode("utf-8")
        footer = package.read("word/footer1.xml").decode("utf-8") if "word/footer1.xml" in package.namelist() else ""
    assert 'w:name="方正小标宋简体"' in fonts and 'w:altName w:val="黑体"' in fonts
    assert "PAGE" in footer


def test_report3_markdown_has_headings_quotes_and_basis_list(report3, laws):
    markdown = to_markdown(report3, kind_of=kinds_of(laws.kb, report3))
    assert markdown.startswith("# 某某镇中心校校长2026年度")
    assert [line[3:] for line in markdown.splitlines() if line.startswith("## ")] == [*HEADINGS, "附：引用依据"]
    for facts in FACTS_BY_SECTION.values():
        for fact in facts:
            assert fact in markdown


def test_customer_corpus_alone_cites_its_mechanism_texts_but_never_the_facts_themselves(tmp_path):
    assistant = make_assistant(tmp_path / "kb")
    try:
        assistant.ingest([CORPUS])
        facts = FACTS_FILE.read_text(encoding="utf-8")
        draft = Drafter(assistant.kb, assistant.retriever).draft(DraftRequest("校长", "某某镇中心校", 2026, facts))
        assert all(section.citations for section in draft.sections)
        for c in draft.citations:
            assert_exact(c, assistant.kb)
            # The facts were copied from report 3; it must not be cited as their own basis.
            assert not any(fact[:10] in c.quote for facts_ in FACTS_BY_SECTION.values() for fact in facts_)
            assert c.source != "校长一岗双责述职报告3.txt"
    finally:
        assistant.close()


def test_a_principal_draft_states_the_principals_own_duty_from_the_customer_corpus(tmp_path):
    assistant = make_assistant(tmp_path / "kb")
    try:
        assistant.ingest([CORPUS])
        draft = Drafter(assistant.kb, assistant.retriever).draft(DraftRequest("校长", "某某镇中心校", 2026, "", section="duties"))
    finally:
        assistant.close()
    # 「本单位」 in a text about schools (its title names 校长) is the school: the first-responsible-person duty is stated
    assert any(c.quote.startswith("法定代表人是安全第一责任人") for c in draft.citations)


def test_a_secondary_school_draft_cites_no_kindergarten_text(drafter):
    kindergarten = ("中华人民共和国学前教育法", "幼儿园管理条例")
    draft = drafter.draft(DraftRequest("教师", "某某县第一中学", 2026, "", section="duties"))
    assert draft.citations and all(c.doc_title not in kindergarten for c in draft.citations)
    # a 中心校 may run kindergartens (the customer's third report does): their texts stay eligible
    central = drafter.draft(DraftRequest("教师", "某某镇中心校", 2026, "", section="duties"))
    assert any(c.doc_title in kindergarten for c in central.citations)


def test_sample_reports_are_labelled_when_they_are_the_only_source(tmp_path):
    assistant = make_assistant(tmp_path / "kb")
    try:
        assistant.ingest([CORPUS / "校长一岗双责述职报告3.txt"])  # kind: sample_report (its sidecar says so)
        draft = Drafter(assistant.kb, assistant.retriever).draft(DraftRequest("校长", "某某镇中心校", 2026, ""))
        if draft.citations:
            assert any("参考范文" in n for n in draft.notices)
            assert "参考范文，非政策文件" in to_markdown(draft, kind_of=kinds_of(assistant.kb, draft))
        else:
            assert any("没有找到适用于" in n for n in draft.notices)
            assert "知识库中未检索到" in draft.text
    finally:
        assistant.close()


# ------------------------------------------------------------------ empty and single-section drafts
def test_empty_facts_give_a_duties_only_draft_that_names_what_to_fill_in(drafter, laws):
    draft = drafter.draft(DraftRequest("班主任", "某某小学", 2026, "   \n"))
    assert [s.heading for s in draft.sections] == HEADINGS
    for section in draft.sections:
        assert section.citations and not section.facts
        assert section.placeholders and section.placeholders[0].startswith("（请补充：")
        assert section.placeholders[0] in section.text
        for c in section.citations:
            assert_exact(c, laws.kb)
    assert any("需要您补充" in n and "二、主要工作与成效" in n for n in draft.notices)
    paragraphs = docx_paragraphs(to_docx(draft))
    assert sum(p.startswith("（请补充：") for p in paragraphs) == 4


def test_one_section_on_request_takes_all_the_facts(drafter):
    facts = "为各单位增设了监控头，并将监控联网\n学校、教师发展还不太均衡"
    draft = drafter.draft(DraftRequest("校长", "某某镇中心校", 2026, facts, section="履职情况"))
    assert [s.heading for s in draft.sections] == ["一、履职基本情况"]
    assert [f.text for f in draft.sections[0].facts] == facts.split("\n")
    assert "（履职基本情况部分）" in draft.title and not draft.preamble
    assert draft.sections[0].citations


@pytest.mark.parametrize(("name", "key"), [
    ("履职情况", "duties"), ("1", "duties"), ("工作成效", "work"), ("二", "work"), ("问题", "problems"),
    ("3", "problems"), ("打算", "plans"), ("四、下一步工作打算", "plans"), ("下一步", "plans"), (None, None), ("全部", None),
])
def test_section_names_users_type(name, key):
    assert parse_section(name) == key


def test_unknown_inputs_are_refused_with_a_message(drafter):
    with pytest.raises(DraftInputError, match="section"):
        drafter.draft(DraftRequest("校长", "某校", 2026, "", section="附件"))
    with pytest.raises(DraftInputError, match="role"):
        drafter.draft(DraftRequest("家长", "某校", 2026))
    with pytest.raises(DraftInputError, match="unit"):
        drafter.draft(DraftRequest("校长", " \x00 ", 2026))
    with pytest.raises(DraftInputError, match="year"):
        drafter.draft(DraftRequest("校长", "某校", 1900))
    with pytest.raises(DraftInputError, match="20000"):
        drafter.draft(DraftRequest("校长", "某校", 2026, "安全" * 10_001))


# ------------------------------------------------------------------ hostile facts
def test_hostile_facts_stay_user_text_and_cannot_corrupt_the_document(drafter, laws):
    long_fact = "开展校园安全隐患排查" * 600 + "共计12次。"
    facts = "\n".join([
        "<script>alert('x')</script>组织了消防演练",
        "**加粗** [点我](javascript:alert(1)) # 标题 | 表格 |",
        f"根据{FAKE_NUMBER}文件要求，开展了防溺水专项教育",
        "控制字符\x00\x07\x1b\u202e和代理\ud800都会被删除",
        long_fact,
    ])
    draft = drafter.draft(DraftRequest("校长", "<b>某某</b>镇中心校\r\n", 2026, facts))
    data = to_docx(draft, kind_of=kinds_of(laws.kb, draft))
    text = "\n".join(docx_paragraphs(data))
    assert "<script>alert('x')</script>组织了消防演练" in text
    assert "**加粗** [点我](javascript:alert(1)) # 标题 | 表格 |" in text
    assert long_fact in text
    assert "控制字符和代理都会被删除" in text
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        xml = package.read("word/document.xml").decode("utf-8")
    assert "<script>" not in xml and "&lt;script&gt;" in xml
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\u202e]", xml)
    # The fake 文号 is the user's statement, never a citation, and the user is told so.
    assert FAKE_NUMBER in text
    assert all(FAKE_NUMBER not in c.quote and FAKE_NUMBER not in c.doc_title for c in draft.citations)
    assert any(FAKE_NUMBER in n and "未作为政策依据" in n for n in draft.notices)
    assert any("控制字符" in n for n in draft.notices)
    for c in draft.citations:
        assert_exact(c, laws.kb)
    markdown = to_markdown(draft)
    assert "\\<script\\>" in markdown and "<script>" not in markdown
    assert "\\[点我](javascript" in markdown and "\\*\\*加粗" in markdown  # literal text, not a link or bold
    assert draft.title == "<b>某某</b>镇中心校校长2026年度学校安全工作“一岗双责”述职报告"


# ------------------------------------------------------------------ facts: splitting, filing, checking
def test_facts_split_one_per_bullet_line_and_sentence_with_labels():
    text = "1、加固了三所幼儿园园舍。增设监控头20个\n- 投入3.5万元更新消防器材\n存在的问题：\n（1）制定了年度安全工作计划\n打算：完善应急预案"
    facts = split_facts(text)
    assert [(f.text, f.section) for f in facts] == [
        ("加固了三所幼儿园园舍。", "work"),
        ("增设监控头20个", "work"),
        ("投入3.5万元更新消防器材", "work"),
        ("制定了年度安全工作计划", "problems"),  # under the user's own label
        ("完善应急预案", "plans"),
    ]


@pytest.mark.parametrize(("fact", "key"), [
    ("对三所幼儿园园舍进行了加固", "work"),
    ("为各单位增设了监控头，并将监控联网", "work"),  # 将 = 把 here, not a plan
    ("制定了年度安全工作计划", "work"),
    ("排查发现问题12个，已全部整改", "work"),
    ("学校、教师发展还不太均衡", "problems"),
    ("部分村小安全教育流于形式", "problems"),
    ("虽有成绩，但还有好多不足，在新的学年我们将注重抓好重点校", "problems"),
    ("下一步将完善应急预案", "plans"),
    ("明年计划新建标准化食堂", "plans"),
    ("本人深刻认识到校长是学校安全第一责任人", "duties"),
])
def test_facts_are_filed_by_their_wording(fact, key):
    assert classify_fact(fact) == key


def test_fact_check_finds_lost_numbers_and_names_and_invented_numbers(report3):
    facts = "对崔村幼儿园等三所幼儿园园舍进行了加固，投入资金12万元"
    reworded = "本年度加固了部分幼儿园园舍，投入资金15万元，整改隐患8处。"
    check = check_facts(facts, reworded)
    assert not check.ok
    assert {"三所", "12", "崔村幼儿园"} <= set(check.missing_items)
    assert check.unsupported_numbers == ("15", "8")
    # Numbers from a cited passage are supported; the user's facts verbatim pass.
    quoted = report3.citations[0]
    ok = check_facts(facts, f"{facts}。依据“{quoted.quote}”[1]", [quoted])
    assert ok.ok and ok.notices() == []


def test_verify_draft_drops_citations_that_do_not_match_their_source(report3, laws):
    section = report3.sections[0]
    bad = replace(section.citations[0], quote=section.citations[0].quote + "（伪造）")
    tampered = replace(report3, sections=(replace(section, citations=(bad, *section.citations[1:])), *report3.sections[1:]))
    checked = verify_draft(tampered, laws.kb, FACTS_FILE.read_text(encoding="utf-8"))
    assert bad.n not in {c.n for c in checked.citations}
    assert f"[{bad.n}]" not in checked.sections[0].text
    assert any("已删除" in n for n in checked.notices)


@pytest.mark.parametrize(("message", "section", "facts", "year"), [
    ("帮我写述职报告的履职情况部分，我们今年加固了三所幼儿园园舍，增设监控头20个。", "duties",
     "我们今年加固了三所幼儿园园舍，增设监控头20个。", None),
    ("帮我起草2026年述职报告：\n加固园舍\n存在问题：监控不全", None, "加固园舍\n存在问题：监控不全", 2026),
    ("请写一下述职报告下一步打算部分：明年将完善应急预案", "plans", "明年将完善应急预案", None),
])
def test_chat_messages_that_ask_for_a_draft(message, section, facts, year):
    intent = draft_intent(message)
    assert intent is not None and (intent.section, intent.facts, intent.year) == (section, facts, year)


def test_questions_are_not_draft_requests():
    assert draft_intent("班主任的安全职责是什么？") is None
    assert draft_intent("述职报告要引用哪些法律？") is None


def test_every_draft_template_renders_strictly():
    from assistant.prompts import load_prompts, render

    variables = {"unit": "某校", "role": "校长", "year": 2026, "section": "履职基本情况", "title": "某法", "label": "规定",
                 "quote": "学校应当……", "more": "", "n": 1, "i": 1, "fact": "事实", "kind_note": "", "source": "a.md",
                 "parts": "三、存在的问题与不足", "number": "某〔2026〕1号", "count": 2, "item": "三所", "heading": "一、履职基本情况"}
    for key in load_prompts("draft").templates:
        assert render("draft", key, **variables).strip(), key
    assert render("draft", "provision", **variables) == "《某法》履职基本情况规定：“学校应当……”[1]"
    assert [render("draft", f"heading_{k}") for k in ("duties", "work", "problems", "plans")] == HEADINGS
