"""Extractive answers over the real laws: exact quotes, grounded decisions, role checklists."""

import json
import re

import pytest

from assistant.answer import CitationError, cite
from assistant.retrieve import is_penalty_article, role_duties
from assistant.schema import answer_to_json
from tests.conftest import LAWS, SEEDS

pytestmark = pytest.mark.shared

QUESTIONS = [
    ("学校发现学生被欺凌，班主任该怎么做？", None),
    ("班主任的安全职责是什么？", None),
    ("校长的安全职责有哪些", "校长"),
    ("校车司机需要什么条件", None),
    ("食堂的饭菜要留样吗", "校长"),
    ("学校着火了老师应该怎么组织学生疏散", "教师"),
    ("学生在学校摔伤了谁来赔", "家长"),
    ("发现老师体罚学生怎么办", "教育局"),
    ("学校安全事故隐患挂牌督办怎么搞", "分管副校长"),
    ("学校安全一票否决有哪些情形", "校长"),
    ("主要负责人每年要向谁报告安全工作", "校长"),
    ("未成年人沉迷网络学校要做什么", "教师"),
]


def _source_text(source: str) -> str:
    path = SEEDS / source if (SEEDS / source).exists() else LAWS / source
    from assistant.ingest.loaders import load_file

    return load_file(path).text


def test_every_quote_of_a_question_batch_is_an_exact_substring_of_its_source(laws_assistant):
    grounded = 0
    for question, role in QUESTIONS:
        answer = laws_assistant.ask(question, role=role)
        data = answer_to_json(answer)
        assert set(data) >= {"question", "answer", "grounded", "mode", "citations", "related"}
        if answer.grounded:
            grounded += 1
            assert answer.citations, question
        for c in answer.citations:
            source = _source_text(c.source)
            assert source[c.start : c.end] == c.quote
            assert c.quote in laws_assistant.kb.chunks[c.chunk_id].text
            assert f"[{c.n}]" in answer.answer
            assert c.quote in answer.answer
        json.dumps(data, ensure_ascii=False)
    assert grounded >= len(QUESTIONS) - 2


def test_bullying_question_cites_the_minors_protection_law(laws_assistant):
    answer = laws_assistant.ask("学校发现学生被欺凌，班主任该怎么做？")
    assert answer.grounded
    titles = [c.doc_title for c in answer.citations]
    assert "中华人民共和国未成年人保护法" in titles
    assert any("欺凌" in c.quote for c in answer.citations)
    assert answer.answer.startswith("作为班主任")


def test_out_of_scope_question_is_not_grounded_and_lists_related_only(laws_assistant):
    answer = laws_assistant.ask("高考加分政策是什么")
    assert not answer.grounded
    assert answer.citations == ()
    assert answer.answer.startswith("现有政策文件中未找到")
    assert len(answer.related) >= 1


def test_role_question_returns_a_checklist_across_documents(laws_assistant):
    answer = laws_assistant.ask("我的安全职责是什么", role="班主任")
    assert answer.grounded
    assert answer.answer.startswith("作为班主任，现有政策文件中规定的安全职责")
    assert len({c.source for c in answer.citations}) >= 3
    assert any("班主任" in c.quote for c in answer.citations)


def test_principal_checklist_lists_the_principals_duties_not_sanctions_or_authorities(laws_assistant):
    kb = laws_assistant.kb
    items = role_duties(kb, "校长", "我的安全职责是什么？")
    sentences = [item.chunk.text[item.span[0] : item.span[1]] for item in items]
    assert len(items) >= 8
    assert not any(is_penalty_article(item.chunk.section) for item in items)
    assert not any(re.search("罚款|处分|撤职|追究", s) for s in sentences)
    # 「食品安全监督管理部门可以对……法定代表人进行责任约谈」 is a duty of the authority, not of the principal.
    assert not any("监督管理部门" in s.split("负责人")[0] for s in sentences)
    assert any("主要负责人对本单位安全生产工作负有下列职责" in s for s in sentences)
    assert any("学校实行校长负责制" in s for s in sentences)
    # Local regulations of places the question does not name come after the national duties ...
    top = [item.chunk for item in items[:6]]
    assert all(c.doc_kind != "local_regulation" for c in top)
    # ... and first when the asker names the place.
    named = role_duties(kb, "校长", "我是山东的校长，我的安全职责是什么？")
    assert named[0].chunk.doc_title.startswith("山东省")
    # ... or when the school's region is configured (DUTY_REGION).
    configured = role_duties(kb, "校长", "我的安全职责是什么？", region="山东省济南市")
    assert configured[0].chunk.doc_title.startswith("山东省")
    # Asked about consequences, the sanction articles are what the checklist is about.
    consequences = role_duties(kb, "校长", "校长没尽到安全职责会被怎么处理？")
    assert any(is_penalty_article(item.chunk.section) for item in consequences)


def test_the_configured_region_ranks_its_own_local_regulation_like_a_named_one(tmp_path):
    from tests.conftest import assistant_over

    docs = {
        "温州市学校安全条例(2020-01-01).md": "# 温州市学校安全条例\n\n第九条 学校应当每学期组织一次消防疏散演练。\n",
        "台州市学校安全条例(2020-01-01).md": "# 台州市学校安全条例\n\n第九条 学校应当每学期组织一次消防疏散演练。\n",
    }
    question = "学校多久组织一次消防疏散演练？"
    for region, first in (("台州", "台州"), ("浙江省温州市", "温州")):
        assistant = assistant_over(tmp_path / region, {}, region=region)
        try:
            for name, text in docs.items():
                (tmp_path / region / name).write_text(text, encoding="utf-8")
            assistant.ingest([tmp_path / region / name for name in docs])
            assert all(d.kind == "local_regulation" for d in assistant.kb.documents())
            assert assistant.search(question, k=2)[0].chunk.doc_title.startswith(first)
            assert assistant.ask(question).citations[0].doc_title.startswith(first)
        finally:
            assistant.close()


def test_unknown_region_changes_nothing_and_named_places_still_count():
    from assistant.retrieve import is_elsewhere
    from assistant.types import Chunk

    def chunk(title: str, kind: str) -> Chunk:
        return Chunk("c", "d", title, f"{title}.md", "第一章 > 第一条", "第一条 ……", 0, 5, doc_kind=kind)

    local = chunk("宁波市学校安全条例", "local_regulation")
    assert is_elsewhere(local, "校长的安全职责是什么", "")
    assert is_elsewhere(local, "校长的安全职责是什么", "山东省")
    assert not is_elsewhere(local, "宁波的校长有哪些安全职责", "")
    assert not is_elsewhere(local, "校长的安全职责是什么", "浙江省宁波市")
    national = chunk("中华人民共和国消防法", "law")
    assert not is_elsewhere(national, "校长的安全职责是什么", "山东省")
    # a city binds its province's regulation: 青岛 is in 山东, 杭州 is not 宁波
    shandong = chunk("山东省学校安全条例", "local_regulation")
    assert not is_elsewhere(shandong, "青岛的学校要不要封闭管理", "")
    assert not is_elsewhere(shandong, "学校要不要封闭管理", "山东青岛")
    assert is_elsewhere(local, "杭州的学校要不要封闭管理", "")


def test_named_places_are_provinces_and_cities():
    from assistant.text import named_places

    assert named_places("深圳的中小学出了事故") == ["深圳"]
    assert set(named_places("我们是山东青岛的学校")) == {"青岛", "山东"}
    assert named_places("内蒙古的学校") == ["内蒙古"]
    assert named_places("学校安全职责有哪些") == []


@pytest.mark.parametrize(
    ("question", "evidence", "elsewhere"),
    [
        ("深圳的学校出了伤害事故，调解期限是多少天？", [("上海市中小学校学生伤害事故处理条例", "local_regulation")] * 3, True),
        ("深圳的学校出了伤害事故怎么处理？", [("上海市中小学校学生伤害事故处理条例", "local_regulation"),
                                       ("中华人民共和国未成年人保护法", "law")], False),  # a national law may answer anywhere
        ("青岛的学校要不要封闭管理？", [("山东省学校安全条例", "local_regulation")], False),  # its province's regulation
        ("宁波的学校要不要封闭管理？", [("宁波市学校安全条例", "local_regulation")], False),
        ("学校要不要封闭管理？", [("山东省学校安全条例", "local_regulation")], False),  # no place named
        ("深圳的学校要不要封闭管理？", [], False),  # no evidence at all: nothing to judge
    ],
)
def test_only_other_places_rules_do_not_answer_a_question_about_a_place(question, evidence, elsewhere):
    from assistant.retrieve import only_elsewhere
    from assistant.types import Chunk

    chunks = [Chunk("c", "d", title, f"{title}.md", "第一条", "第一条 ……", 0, 5, doc_kind=kind) for title, kind in evidence]
    assert only_elsewhere(question, chunks) is elsewhere


def test_a_question_about_a_place_only_other_places_rules_speak_to_is_not_answered(laws_assistant):
    answer = laws_assistant.ask("深圳的学校出了学生伤害事故，申请教育局调解，要在多少天内调解完？")
    assert not answer.grounded and answer.citations == ()
    assert "不适用于深圳" in answer.answer and answer.related
    assert all(h.chunk.doc_kind == "local_regulation" for h in answer.related[:3])
    # a city in a province whose regulation is in the texts is answered from it
    answer = laws_assistant.ask("青岛的中小学，学生在校期间要不要对校园封闭管理？")
    assert answer.grounded and answer.citations[0].doc_title == "山东省学校安全条例"


@pytest.mark.parametrize(
    ("question", "title", "other_level"),
    [
        ("我是初中老师，多久要体检一次？", "中华人民共和国学前教育法", True),
        ("小学的保安要不要持证上岗？", "幼儿园管理条例", True),
        ("幼儿园老师多久要体检一次？", "中华人民共和国学前教育法", False),  # the question is about kindergartens
        ("幼儿园能不能提前教小学的内容？", "中华人民共和国学前教育法", False),  # both levels named
        ("老师多久要体检一次？", "中华人民共和国学前教育法", False),  # no level named
        ("我是初中老师，多久要体检一次？", "中华人民共和国教师法", False),
        ("我是初中老师，多久要体检一次？", "中小学幼儿园安全管理办法", False),  # a text for schools too
    ],
)
def test_kindergarten_texts_do_not_bind_a_primary_or_secondary_school(question, title, other_level):
    from assistant.retrieve import is_other_level
    from assistant.types import Chunk

    assert is_other_level(Chunk("c", "d", title, f"{title}.md", "第一条", "第一条 ……", 0, 5, doc_kind="law"), question) is other_level


def test_a_school_question_is_not_answered_from_kindergarten_texts_alone(laws_assistant):
    kindergarten = ("中华人民共和国学前教育法", "幼儿园管理条例")
    asked = "幼儿园的教职工入职以后多久要做一次健康检查？"
    answer = laws_assistant.ask(asked)
    assert answer.grounded and answer.citations[0].doc_title in kindergarten
    hits = laws_assistant.search(asked.replace("幼儿园", "初中"), k=10)
    ranks = [i for i, h in enumerate(hits) if h.chunk.doc_title in kindergarten]
    assert not ranks or ranks[0] > 0  # a kindergarten text is not the first answer for a 初中
    answer = laws_assistant.ask(asked.replace("幼儿园", "初中"))
    assert all(c.doc_title not in kindergarten for c in answer.citations)


def test_the_refusal_says_when_only_kindergarten_texts_come_near(laws_assistant):
    from assistant.retrieve import RetrieverParams

    # Without the ranking penalty kindergarten articles come first: the answer must still not rest on them.
    laws_assistant.retriever.params = RetrieverParams(level_penalty=1.0)
    try:
        only_kindergarten = laws_assistant.ask("初中的卫生保健人员和安全保卫人员入职前要做健康检查吗？")
        one_other = laws_assistant.ask("初中的安全保卫人员要不要每年进行健康检查？")
        first = laws_assistant.search("初中的安全保卫人员要不要每年进行健康检查？", k=1)[0]
    finally:
        laws_assistant.retriever.params = RetrieverParams()
    assert not only_kindergarten.grounded and only_kindergarten.citations == ()
    assert "不适用于中小学" in only_kindergarten.answer
    assert only_kindergarten.related[0].chunk.doc_title == "中华人民共和国学前教育法"
    # the first hit is a kindergarten article, but what is quoted comes from the other texts
    assert first.chunk.doc_title == "中华人民共和国学前教育法"
    assert one_other.citations and all(c.doc_title != "中华人民共和国学前教育法" for c in one_other.citations)


def test_a_role_word_inside_another_word_is_not_the_role():
    from assistant.retrieve import _role_at

    assert _role_at("是确保学校长期稳定发展的客观需要", "校长") == -1  # 学校 + 长期
    assert _role_at("学校长期规划由校长负责", "校长") == 7
    assert _role_at("中学校长应当组织演练", "校长") == 2
    assert _role_at("担任校长期间发生事故的", "校长") == 2


def test_checklist_keeps_the_role_as_subject_of_the_duty(tmp_path):
    from tests.conftest import assistant_over

    text = ("# 某某学校安全规定\n\n第一条 学校应当对教职员工开展安全培训。\n\n"
            "第二条 教职员工应当遵守学校安全制度，发现隐患及时报告。\n\n"
            "第三条 教育行政部门可以对未履行安全职责的教职员工进行约谈。\n\n"
            "第四条 教职员工的安全培训经费应当列入预算。\n")
    assistant = assistant_over(tmp_path, {"某某学校安全规定.md": text})
    try:
        items = role_duties(assistant.kb, "教师", "我的安全职责是什么？")
        sentences = [item.chunk.text[item.span[0] : item.span[1]] for item in items]
        assert sentences[0] == "第二条 教职员工应当遵守学校安全制度，发现隐患及时报告。"
        assert not any(s.startswith(("第一条", "第三条")) for s in sentences)
    finally:
        assistant.close()


def test_cite_refuses_a_span_that_does_not_match(laws_assistant):
    chunk = next(iter(laws_assistant.kb.chunks.values()))
    good = cite(1, chunk, laws_assistant.kb, (0, 5))
    assert good.quote == chunk.text[:5]
    forged = type(chunk)(**{**{f: getattr(chunk, f) for f in chunk.__slots__}, "text": "伪造的条文内容" + chunk.text})
    with pytest.raises(CitationError):
        cite(1, forged, laws_assistant.kb, (0, 5))


def test_newer_version_is_preferred_and_the_answer_says_which(tmp_path):
    from tests.conftest import make_assistant

    old = "# 某某学校安全法\n\n第一条 学校应当每学期组织一次消防疏散演练。\n"
    new = "# 某某学校安全法\n\n第一条 学校应当每月组织一次消防疏散演练。\n"
    (tmp_path / "某某学校安全法(2010-01-01).md").write_text(old, encoding="utf-8")
    (tmp_path / "某某学校安全法(2020-01-01).md").write_text(new, encoding="utf-8")
    assistant = make_assistant(tmp_path / "kb")
    try:
        assistant.ingest([tmp_path])
        hits = assistant.search("学校多久组织一次消防疏散演练", k=2)
        assert hits[0].chunk.source == "某某学校安全法(2020-01-01).md"
        answer = assistant.ask("学校多久组织一次消防疏散演练")
        assert answer.citations[0].source == "某某学校安全法(2020-01-01).md"
        assert "（引用版本：2020-01-01；该文件另有旧版本已入库）" in answer.answer
        old_doc = next(d for d in assistant.kb.documents() if d.source.startswith("某某学校安全法(2010"))
        assert old_doc.superseded_by == "某某学校安全法（2020-01-01）"
    finally:
        assistant.close()


def test_a_school_teachers_checklist_leaves_out_kindergarten_duties(laws_assistant):
    kindergarten = ("中华人民共和国学前教育法", "幼儿园管理条例")
    general = laws_assistant.ask("作为教师，我的安全职责有哪些？", role="教师")
    assert any(c.doc_title in kindergarten for c in general.citations)  # no level named: kindergartens count
    school = laws_assistant.ask("作为初中教师，我的安全职责有哪些？", role="教师")
    assert school.grounded and len(school.citations) >= 3
    assert all(c.doc_title not in kindergarten for c in school.citations)


def test_a_duty_checklist_takes_要_as_must_not_inside_主要_重要_只要(tmp_path):
    from tests.conftest import assistant_over

    report = (
        "学校安全工作述职\n\n"
        "一、明确职责\n\n"
        "广大教师要严格落实安全管理措施，谁在岗，谁负责。\n\n"
        "二、工作回顾\n\n"
        "我校将课改作为中心工作，主要思路是以骨干教师引领。\n\n"
        "考核结果是教师评优评先的重要依据。\n\n"
        "只要教师坚持不懈，教学水平一定会提升。\n"
    )
    assistant = assistant_over(tmp_path, {"述职.md": report})
    try:
        answer = assistant.ask("作为初中教师，我的安全职责有哪些？", role="教师")
    finally:
        assistant.close()
    assert answer.grounded
    assert [c.quote for c in answer.citations] == ["广大教师要严格落实安全管理措施，谁在岗，谁负责。"]


def _article(text: str):
    from assistant.types import Chunk

    return Chunk("c", "d", "某条例", "某条例.md", "第五条", text, 0, len(text), doc_kind="law")


def test_a_list_is_quoted_with_its_items():
    from assistant.answer import _quote_span

    text = ("第五条 有下列情形之一的，取消当年评优资格。\n\n（一）发生重大安全事故的；\n\n（二）隐瞒不报的。\n\n"
            "本条自公布之日起施行。")
    chunk = _article(text)
    start, end = _quote_span(chunk, (0, text.index("。") + 1))
    assert text[start:end] == text[: text.index("隐瞒不报的。") + len("隐瞒不报的。")]  # both items, not the next sentence
    # a passage further down an answer to a question that asks for no list keeps to its sentence
    # (a sentence under 25 characters still takes the next one along)
    start, end = _quote_span(chunk, (0, text.index("。") + 1), items=False)
    assert text[start:end].startswith("第五条 有下列情形之一的") and "（二）" not in text[start:end]
    # a lead-in ending with 「：」 takes every item, not only the first
    text = "第八条 教师应当履行下列义务：\n(1)遵守法律；\n(2)关爱学生；\n(3)制止有害于学生的行为。\n第九条 另一条。"
    chunk = _article(text)
    start, end = _quote_span(chunk, (0, text.index("：") + 1))
    assert text[start:end].endswith("(3)制止有害于学生的行为。") and "第九条" not in text[start:end]


def test_a_long_list_is_quoted_by_whole_items_up_to_the_limit():
    from assistant.answer import MAX_LIST_QUOTE_CHARS, MAX_QUOTE_CHARS, _quote_span

    items = "".join(f"\n（{n}）{'学校应当落实安全管理制度' * 6}；" for n in "一二三四五六七八九十")
    text = "第十条 学校应当做好下列工作：" + items
    start, end = _quote_span(_article(text), (0, text.index("：") + 1))
    quote = text[start:end]
    assert MAX_QUOTE_CHARS < len(quote) <= MAX_LIST_QUOTE_CHARS
    assert quote.endswith("；") and "（一）" in quote and "（十）" not in quote


def test_a_sentence_that_introduces_no_list_is_quoted_alone():
    from assistant.answer import _quote_span

    text = "第六条 学校应当建立健全安全管理制度，每学期定期开展安全检查。\n（一）这一行不属于上一句。"
    start, end = _quote_span(_article(text), (0, text.index("。") + 1))
    assert text[start:end] == "第六条 学校应当建立健全安全管理制度，每学期定期开展安全检查。"


def test_an_own_duty_question_is_not_answered_when_no_text_lays_a_duty_on_the_role(tmp_path):
    from tests.conftest import assistant_over

    docs = {"学校安全制度.md": "第一条 学校应当建立安全管理制度，每学期召开家长会，向家长通报学校安全工作情况。\n\n"
                               "第二条 班主任应当每天清点学生人数，发现学生未到校的，及时联系家长。\n"}
    assistant = assistant_over(tmp_path, docs)
    try:
        parent = assistant.ask("我是家长，我的安全职责有哪些？", role="家长")
        teacher = assistant.ask("我是班主任，我的安全职责有哪些？", role="班主任")
    finally:
        assistant.close()
    # 家长 is named only as someone the school and the 班主任 inform: nothing answers a parent's own duties
    assert not parent.grounded and parent.citations == () and parent.related
    assert teacher.grounded and "班主任应当每天清点学生人数" in teacher.citations[0].quote


def test_what_a_term_means_is_answered_by_the_sentence_that_defines_it(laws_assistant):
    answer = laws_assistant.ask("一岗双责是什么意思？")
    assert answer.grounded and "“一岗双责”是指某一具体岗位兼有双重责任" in answer.citations[0].quote
