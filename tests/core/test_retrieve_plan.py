"""Query planning: what a question asks for, and how that moves the ranking (small hand-made cases)."""

import pytest

from assistant.retrieve import HybridRetriever, RetrieverParams, is_penalty_article, plan_query, topic_prior
from assistant.types import Chunk
from tests.conftest import make_assistant

# A duty, a second duty, and the sanction that repeats both word for word.
FIRE_RULES = (
    "# 消防规定\n\n第一章 消防安全\n\n第一条 学校应当每月开展消防安全检查。\n\n第二条 学校应当每学期组织疏散演练。\n\n"
    "第二章 法律责任\n\n第三条 学校未每月开展消防安全检查、未组织疏散演练的，由消防救援机构责令改正，处五千元罚款。\n"
)


@pytest.fixture(scope="module")
def fire_kb(tmp_path_factory):
    root = tmp_path_factory.mktemp("fire")
    (root / "消防规定.md").write_text(FIRE_RULES, encoding="utf-8")
    assistant = make_assistant(root / "kb")
    assistant.ingest([root / "消防规定.md"])
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
