"""Query planning: what a question asks for, and how that moves the ranking (small hand-made cases)."""

import pytest

from assistant.retrieve import (
    HybridRetriever,
    RetrieverParams,
    asked_items_listed,
    heading_names,
    is_penalty_article,
    listed_nouns,
    named_titles,
    plan_query,
    question_weights,
    spread_documents,
    states_duration,
    topic_prior,
)
from assistant.types import Chunk
from tests.conftest import assistant_over

# A duty, a second duty, and the sanction that repeats both word for word.
FIRE_RULES = (
    "# 消防规定\n\n第一章 消防安全\n\n第一条 学校应当每月开展消防安全检查。\n\n第二条 学校应当每学期组织疏散演练。\n\n"
    "第二章 法律责任\n\n第三条 学校未每月开展消防安全检查、未组织疏散演练的，由消防救援机构责令改正，处五千元罚款。\n"
)


@pytest.fixture(scope="module")
def fire_kb(tmp_path_factory):
    assistant = assistant_over(tmp_path_factory.mktemp("fire"), {"消防规定.md": FIRE_RULES})
    yield assistant.kb
    assistant.close()


def _chunk(section: str) -> Chunk:
    return Chunk("c1", "d1", "消防规定", "消防规定.md", section, "第三条 ……", 0, 6)


@pytest.mark.parametrize(
    ("question", "asks"),
    [
        ("学校不开展消防检查会被怎么罚？", True),
        ("校外人员打伤学生，学校要不要担责？", True),
        ("出了事故会追究校长什么责任？", True),
        ("学校要多久开展一次消防检查？", False),
        ("发现学生被欺凌，班主任该怎么做？", False),
        # the asker disciplining a pupil is not a question about sanctions
        ("学生上课老捣乱，我能不能罚他去走廊站一节课？", False),
        ("罚站算不算体罚？", False),
        ("老师体罚学生会被怎么处理？", True),
        ("抽烟被查到会罚多少钱？", True),
    ],
)
def test_questions_about_sanctions_are_told_apart(question, asks):
    assert plan_query(question).asks_consequence is asks


def test_sanction_chapters_are_recognised_by_their_top_heading():
    assert is_penalty_article("第六章 法律责任 > 第六十八条")
    assert is_penalty_article("第八章 奖励与处罚 > 第四十条")
    assert not is_penalty_article("第三章 事故责任 > 第二十七条")
    assert not is_penalty_article("第二章 学校保护 > 第三十五条 > （二）法律责任教育")


def test_topic_prior_lowers_sanctions_only_for_questions_about_duties():
    params = RetrieverParams(sanction_penalty=0.8)
    sanction, duty = _chunk("第二章 法律责任 > 第三条"), _chunk("第一章 消防安全 > 第一条")
    what_to_do = plan_query("学校每月要开展消防检查吗？")
    penalty = plan_query("学校不开展消防检查会被怎么罚？")
    assert topic_prior(what_to_do, sanction, params) == 0.8
    assert topic_prior(what_to_do, duty, params) == 1.0
    assert topic_prior(penalty, sanction, params) == 1.0


def test_duty_comes_before_the_sanction_that_repeats_it(fire_kb):
    question = "学校每月要开展消防安全检查和疏散演练吗？"
    neutral = HybridRetriever(fire_kb, RetrieverParams(sanction_penalty=1.0)).search(question, k=3)
    assert neutral[0].chunk.section.endswith("第三条")  # the sanction matches more of the words
    ranked = HybridRetriever(fire_kb).search(question, k=3)
    assert ranked[0].chunk.section.endswith("第一条")
    asked_about_fines = HybridRetriever(fire_kb).search("学校不开展消防安全检查和疏散演练会被怎么罚？", k=3)
    assert asked_about_fines[0].chunk.section.endswith("第三条")


@pytest.mark.parametrize(
    "question",
    ["我是班主任，我要负哪些责？", "我是班主任，学校安全这块我到底要负什么责？", "作为班主任，我的安全职责有哪些？"],
)
def test_own_duty_questions_are_role_questions(question):
    plan = plan_query(question, role="班主任")
    assert plan.is_role_question
    # 负、责、职责 and fillers only frame the question: at most one word is left as its topic, which is
    # what lets the answer be the role's duty checklist
    assert len([w for w in plan.words if w not in plan.role_words]) <= 1


def test_the_role_is_the_topic_of_an_own_duty_question():
    tokens, weights = plan_query("我是班主任，我要负哪些责？", role="班主任").sparse_tokens()
    assert "班主任" in tokens and weights.get("班主任", 1.0) == 1.0
    tokens, weights = plan_query("学生打架了，班主任该怎么处理？", role="班主任").sparse_tokens()
    assert weights["班主任"] < 1.0


def test_a_split_everyday_phrase_is_kept_whole_for_the_sentence_focus():
    plan = plan_query("学校安排我当校车的跟车老师，一路上要做什么？")
    assert "随车照管人员" in plan.expansions
    assert "跟车老师" in plan.focus_words and "跟" not in plan.focus_words
    assert "跟" in plan.words  # the asker's own words stay as they were


# Two texts with the same duty; the second words it closer to the question below.
TEACHERS_LAW = "# 中华人民共和国教师法\n\n第一条 教师应当关心爱护学生。\n"
SCHOOL_RULES = "# 学校管理规定\n\n第一条 教师应当关心、爱护全体学生，尊重学生人格。\n"


@pytest.fixture(scope="module")
def two_texts_kb(tmp_path_factory):
    assistant = assistant_over(tmp_path_factory.mktemp("named"), {"教师法.md": TEACHERS_LAW, "学校管理规定.md": SCHOOL_RULES})
    yield assistant.kb
    assistant.close()


def test_a_law_is_named_by_its_short_title_and_the_longest_name_wins():
    titles = {"中华人民共和国教育法", "中华人民共和国学前教育法", "中华人民共和国教师法", "校车安全管理条例"}
    assert named_titles("按教师法，老师要尽哪些义务？", titles) == {"中华人民共和国教师法"}
    assert named_titles("学前教育法里幼儿园要做什么？", titles) == {"中华人民共和国学前教育法"}
    assert named_titles("教育法和校车安全管理条例怎么说？", titles) == {"中华人民共和国教育法", "校车安全管理条例"}
    assert named_titles("老师要尽哪些义务？", titles) == frozenset()


def test_the_law_a_question_names_comes_first(two_texts_kb):
    question = "教师法里说教师应当怎样关心爱护学生、尊重学生人格？"
    neutral = HybridRetriever(two_texts_kb, RetrieverParams(unnamed_penalty=1.0)).search(question, k=2)
    assert neutral[0].chunk.doc_title == "学校管理规定"  # it matches more of the words
    ranked = HybridRetriever(two_texts_kb).search(question, k=2)
    assert ranked[0].chunk.doc_title == "中华人民共和国教师法"
    unnamed = HybridRetriever(two_texts_kb).search("教师应当怎样关心爱护学生、尊重学生人格？", k=2)
    assert unnamed[0].chunk.doc_title == "学校管理规定"


def test_further_articles_of_one_document_give_way_to_another_document():
    chunks = {cid: Chunk(cid, doc, doc, f"{doc}.md", cid, "……", 0, 2) for cid, doc in
              [("a1", "A"), ("a2", "A"), ("a3", "A"), ("b1", "B")]}
    scores = {"a1": 1.0, "a2": 0.95, "a3": 0.9, "b1": 0.85}
    spread = spread_documents(list(scores), scores, chunks, 0.9)
    assert sorted(spread, key=lambda cid: -spread[cid]) == ["a1", "a2", "b1", "a3"]
    assert spread["b1"] == 0.85 and spread["a3"] == pytest.approx(0.9 * 0.81)
    assert spread_documents(list(scores), scores, chunks, 1.0) == scores


def test_which_ones_questions_prefer_an_article_that_lists_them():
    params = RetrieverParams(list_bonus=1.3, sanction_penalty=1.0)
    listing = Chunk("c1", "d1", "条例", "条例.md", "第一条", "第一条 随车照管人员应当履行下列职责：\n\n（一）清点人数；", 0, 20)
    single = Chunk("c2", "d1", "条例", "条例.md", "第二条", "第二条 随车照管人员应当清点人数。", 0, 16)
    which = plan_query("跟车老师要负责哪些事？")
    assert which.asks_list and not plan_query("跟车老师要清点人数吗？").asks_list
    assert topic_prior(which, listing, params) == 1.3
    assert topic_prior(which, single, params) == 1.0
    assert topic_prior(plan_query("跟车老师要清点人数吗？"), listing, params) == 1.0


def test_what_questions_prefer_a_list_only_of_what_they_ask_for():
    params = RetrieverParams(list_bonus=1.3, sanction_penalty=1.0)
    conditions = Chunk("c1", "d1", "条例", "条例.md", "第一条", "第一条 取得校车使用许可应当符合下列条件：\n\n（一）车辆合格；", 0, 24)
    duties = Chunk("c2", "d1", "条例", "条例.md", "第二条", "第二条 随车照管人员应当履行下列职责：\n\n（一）清点人数；", 0, 20)
    question = plan_query("学校申请校车使用许可需要什么条件？")
    assert listed_nouns(conditions.text) == ("条件",)
    assert listed_nouns("第三条 因下列情形之一造成事故的，学校不承担责任：") == ()
    assert listed_nouns("第三条 学校有下列情形之一的：") == ("情形",)
    assert topic_prior(question, conditions, params) == 1.3
    assert topic_prior(question, duties, params) == 1.0


# Three duties of the class teacher in one text, a fourth in another.
TEXT_A = ("# 甲规定\n\n第一条 班主任应当每天清点学生人数，发现学生缺席及时联系家长。\n\n"
          "第二条 班主任应当开展安全教育，每周讲一次安全课。\n\n第三条 班主任应当检查教室门窗，消除安全隐患。\n")
TEXT_B = "# 乙规定\n\n第一条 班主任负责组织学生参加疏散演练。\n"


@pytest.fixture(scope="module")
def duties_kb(tmp_path_factory):
    assistant = assistant_over(tmp_path_factory.mktemp("duties"), {"甲规定.md": TEXT_A, "乙规定.md": TEXT_B})
    yield assistant.kb
    assistant.close()


def _docs(kb, question, decay):
    hits = HybridRetriever(kb, RetrieverParams(same_doc_decay=decay)).search(question, k=4, role="班主任")
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    return [h.chunk.doc_title for h in hits]


def test_an_own_duty_question_sees_a_second_text_early(duties_kb):
    question = "我是班主任，我的安全职责有哪些？"
    assert _docs(duties_kb, question, 1.0)[:2] == ["甲规定", "甲规定"]
    assert _docs(duties_kb, question, 0.5)[:2] == ["甲规定", "乙规定"]
    # a question about one situation keeps the plain order
    other = "班主任应当怎样做好安全工作？"
    assert _docs(duties_kb, other, 0.5) == _docs(duties_kb, other, 1.0)


def test_which_ones_questions_prefer_a_list_of_what_they_name():
    params = RetrieverParams(list_bonus=1.3, sanction_penalty=1.0)
    duties = Chunk("c1", "d1", "教师法", "教师法.md", "第八条", "第八条 教师应当履行下列义务：\n\n（一）遵守宪法；", 0, 20)
    others = Chunk("c2", "d1", "教师法", "教师法.md", "第九条", "第九条 学校应当履行下列职责：\n\n（一）提供条件；", 0, 20)
    question = plan_query("教师法规定老师要履行哪些义务？")
    listed = asked_items_listed(question, [duties, others])
    assert listed
    assert topic_prior(question, duties, params, items_listed=listed) == 1.3
    assert topic_prior(question, others, params, items_listed=listed) == 1.0
    # when no candidate lists what was named (or nothing is named), any list still answers "which ones"
    assert not asked_items_listed(question, [others])
    assert topic_prior(question, others, params, items_listed=False) == 1.3
    vague = plan_query("跟车老师要负责哪些事？")
    assert not asked_items_listed(vague, [duties, others])


def test_how_long_questions_prefer_an_article_that_states_a_time_span():
    params = RetrieverParams(duration_bonus=1.2, sanction_penalty=1.0, list_bonus=1.0)
    timed = Chunk("c1", "d1", "条例", "条例.md", "第十三条", "第十三条 承办者应当在活动举办日的20日前提出安全许可申请。", 0, 30)
    untimed = Chunk("c2", "d1", "条例", "条例.md", "第十五条", "第十五条 承办者变更活动地点的，应当重新申请安全许可。", 0, 28)
    question = plan_query("办大型活动，安全许可的申请要提前多少天交？")
    assert question.asks_duration and not plan_query("办大型活动要申请安全许可吗？").asks_duration
    assert states_duration(timed.text) and states_duration("学校应当每学期组织一次疏散演练。")
    assert states_duration("应当自受理之日起三个月内调解结束") and not states_duration(untimed.text)
    assert topic_prior(question, timed, params) == 1.2
    assert topic_prior(question, untimed, params) == 1.0
    assert topic_prior(plan_query("办大型活动要申请安全许可吗？"), timed, params) == 1.0


@pytest.mark.parametrize(
    ("question", "asks"),
    [
        ("一岗双责是什么意思？", True),
        ("一岗双责到底啥意思？", True),
        ("什么是重大事故隐患？", True),
        ("食品安全事故的定义是什么？", True),
        ("家长有什么法定义务？", False),  # 法定义务 is no 定义
        ("班主任的安全职责是什么？", False),
    ],
)
def test_questions_about_what_a_term_means_are_told_apart(question, asks):
    assert plan_query(question).asks_definition is asks


def test_what_does_it_mean_questions_prefer_an_article_that_defines():
    params = RetrieverParams(definition_bonus=1.3, sanction_penalty=1.0, list_bonus=1.0, duration_bonus=1.0)
    defines = Chunk("c1", "d1", "报告", "报告.md", "一、", "“一岗双责”是指某一具体岗位兼有双重责任。", 0, 21)
    uses = Chunk("c2", "d1", "报告", "报告.md", "三、", "推行“一岗双责”制，要加强领导，整体推进。", 0, 21)
    question = plan_query("一岗双责是什么意思？")
    assert topic_prior(question, defines, params) == 1.3
    assert topic_prior(question, uses, params) == 1.0
    assert topic_prior(plan_query("一岗双责怎么落实？"), defines, params) == 1.0
    assert topic_prior(question, Chunk("c3", "d2", "法", "法.md", "第一百五十条", "本法所称食品，指各种供人食用的成品。", 0, 18), params) == 1.3


def test_what_questions_prefer_an_article_whose_heading_names_what_they_ask_about():
    params = RetrieverParams(list_bonus=1.3, sanction_penalty=1.0)
    question = plan_query("教育局和公安这些部门之间，靠什么机制一起商量学校安全的事？")
    under = Chunk("c1", "d1", "报告", "报告.txt", "二、学校安全工作议事协调机制 > 2、", "2、各级教育行政部门要建立联席会议制度。", 0, 20)
    other = Chunk("c2", "d1", "报告", "报告.txt", "三、学校安全目标管理 > 1、", "1、各级教育行政部门要建立考核制度。", 0, 18)
    assert topic_prior(question, under, params) == 1.3
    assert topic_prior(question, other, params) == 1.0
    # an article number is not a heading about anything
    assert heading_names("第一章 总则 > 第十条", "总则") and not heading_names("第一章 总则 > 第十条", "十条")


def test_the_role_is_the_topic_of_the_sentence_focus_in_an_own_duty_question(duties_kb):
    own = plan_query("我是班主任，学校安全这块我到底要负哪些责？", role="班主任")
    other = plan_query("学生打架了，班主任该怎么处理？", role="班主任")
    assert "班主任" in own.role_words and "班主任" in other.role_words
    own_weight, other_weight = question_weights(duties_kb, own)["班主任"], question_weights(duties_kb, other)["班主任"]
    assert own_weight > 0 and other_weight == pytest.approx(own_weight * 0.25)
