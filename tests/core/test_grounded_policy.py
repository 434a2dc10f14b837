"""GroundedPolicy end to end on a tiny knowledge base: a question after a specific the texts do not give
is answered with 「未找到」, the same question about what the texts do say is answered."""

import pytest

from assistant.answer import ExtractiveAnswerer, GroundedPolicy
from tests.conftest import assistant_over

DOCS = {
    "督导办法.md": "# 督导办法\n\n第一条 督学对学校实施经常性督导，每学期不得少于2次。\n\n"
    "第二条 学校组织春游、秋游等集体活动，应当制定安全预案。\n\n第三条 学校应当开展经常性的校园安全检查。\n",
}


@pytest.fixture(scope="module")
def small_assistant(tmp_path_factory):
    assistant = assistant_over(tmp_path_factory.mktemp("policy"), DOCS)
    yield assistant
    assistant.close()


def test_a_number_the_texts_state_is_answered(small_assistant):
    answer = small_assistant.ask("督学每学期最少来学校督导几次？")
    assert answer.grounded and "2次" in answer.answer


def test_a_number_about_something_else_is_not_an_answer(small_assistant):
    # the only number is how often inspectors visit, and it is a minimum
    answer = small_assistant.ask("学校组织春游秋游，一个学期最多能搞几次？")
    assert not answer.grounded and answer.citations == ()


def test_a_form_the_texts_do_not_contain_is_not_an_answer(small_assistant):
    answer = small_assistant.ask("学校安全检查的打分表模板在哪里可以下载？")
    assert not answer.grounded


def test_the_checks_can_be_switched_off(small_assistant):
    lenient = ExtractiveAnswerer(small_assistant.kb, small_assistant.answerer.retriever,
                                 policy=GroundedPolicy(check_quantity=False, check_resource=False))
    assert lenient.answer("学校组织春游秋游，一个学期最多能搞几次？").grounded
    assert lenient.answer("学校安全检查的打分表模板在哪里可以下载？").grounded


STUDY_DOCS = {
    "卫生.md": "# 卫生\n\n第五条 学生每日学习时间(包括自习)，小学不超过六小时，中学不超过八小时。\n\n"
    "第六条 学校应当保证学生的体育活动时间。\n",
    "义务教育.md": "# 义务教育\n\n第二条 国家实行九年义务教育制度。\n\n第三条 学校应当保障学生安全。\n",
    "食堂.md": "# 食堂\n\n第七条 学校食堂应当保持清洁。\n",
}


@pytest.fixture(scope="module")
def study_assistant(tmp_path_factory):
    assistant = assistant_over(tmp_path_factory.mktemp("study"), STUDY_DOCS)
    yield assistant
    assistant.close()


def test_a_number_sharing_only_a_common_word_is_not_an_answer(study_assistant):
    # 「学习时间不超过六小时」 shares 时间 with the question, but says nothing about sleep
    assert not study_assistant.ask("小学生每晚要保证睡够几个小时？").grounded
    assert study_assistant.ask("小学生每天学习最多几个小时？").grounded


def test_a_set_phrase_is_the_subject_of_a_quantity_question(study_assistant):
    answer = study_assistant.ask("我国的义务教育一共要读几年？")
    assert answer.grounded and "九年" in answer.answer
