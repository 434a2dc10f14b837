"""Evidence checks behind the grounded decision."""

import pytest

from assistant.bm25 import BM25Index
from assistant.grounding import (
    asked_quantities,
    missing_quantity,
    missing_resource,
    topic_coverage,
)
from assistant.text import bm25_tokens

PASSAGES = ["第三条 学校食堂应当每餐次留样，留样食品应当冷藏保存。", "第九条 国家实行优惠政策，支持学校建设。"]


def _index(passages=PASSAGES):
    return BM25Index.build([str(i) for i in range(len(passages))], [bm25_tokens(p) for p in passages])


def test_quantity_asked_but_not_stated_is_missing():
    assert missing_quantity("食堂留样要留多少克？", PASSAGES)
    assert not missing_quantity("食堂留样要留多少克？", ["留样食品不少于125克。"])
    assert not missing_quantity("食堂要不要留样？", PASSAGES)  # no number asked for
    assert not missing_quantity("批评了好几次都不改怎么办", PASSAGES)  # 「好几次」 is not a question about a count


@pytest.mark.parametrize(
    ("question", "stated", "not_an_answer"),
    [
        ("食堂留样要保存多少个小时？", "留样食品应当冷藏保存48小时。", "留样食品应当冷藏保存两天。"),
        ("消防栓的水压要达到多少兆帕？", "消防栓的水压不低于0.35兆帕。", "消防栓应当保持完好有效。"),  # a unit no table lists
        ("校车多长时间检验一次？", "校车应当每半年进行一次安全技术检验。", "校车应当进行安全技术检验。"),  # a rate
        ("校园的围墙要砌多高？", "校园的围墙高度不低于2米。", "校园的围墙应当坚固。"),  # a measure without a unit word
        ("教师年度考核评优的比例是多少？", "考核评优比例不超过20%。", "考核评优应当公平。"),
    ],
)
def test_units_of_an_answer_follow_the_question(question, stated, not_an_answer):
    assert not missing_quantity(question, [stated])
    assert missing_quantity(question, [not_an_answer])


def test_a_number_about_another_subject_does_not_answer():
    passages = ["第十四条 督学对学校实施经常性督导，每学期不得少于2次。"]
    assert not missing_quantity("督学每学期最少来学校督导几次？", passages)
    # shared: 「学校」 (who asks) and 「每学期」 (the period of the count); neither is what is counted
    assert missing_quantity("学校组织春游，每学期能搞几次？", passages, ignore=("学校",))


def test_a_list_item_is_about_the_subject_of_its_lead_in():
    article = "第二十三条 校车驾驶人应当符合下列条件：\n(一)年龄在25周岁以上、不超过60周岁；\n(二)无犯罪记录。"
    assert not missing_quantity("开校车的驾驶人多大年纪可以？", [article])
    # the same list item without its lead-in says nothing about drivers
    assert missing_quantity("开校车的驾驶人多大年纪可以？", ["第二条 年龄在25周岁以上、不超过60周岁；"])


def test_a_minimum_does_not_answer_a_question_about_a_maximum():
    stated_min = ["学校每学期应当组织安全检查，安全检查不少于两次。"]
    assert missing_quantity("学校每学期最多组织几次安全检查？", stated_min)
    assert not missing_quantity("学校每学期最少组织几次安全检查？", stated_min)
    assert not missing_quantity("学校每学期组织几次安全检查？", stated_min)  # no limit asked: any number answers
    assert not missing_quantity("学校每学期最多组织几次安全检查？", ["安全检查每学期不超过四次。"])


def test_a_measure_word_between_number_and_unit_still_states_the_number():
    passages = ["第十九条 学校应当自收到申请之日起20个工作日内作出答复。"]
    assert not missing_quantity("学校收到申请后几天内要答复？", passages)
    assert missing_quantity("学校收到申请后几天内要答复？", ["第十九条 学校应当及时作出答复。"])


def test_the_limit_asked_for_is_not_the_subject_of_the_number():
    # 「少于」 in the question must not tie it to 「不少于2次」 about something else
    passages = ["第十四条 督学对学校实施经常性督导，每学期不得少于2次。"]
    assert missing_quantity("家长开放日一年不能少于几回？", passages)


def test_few_and_ordinal_are_not_questions_about_a_number():
    assert asked_quantities("我能不能当着全班骂他几句？") == []  # the sentence asks something else
    assert asked_quantities("这是第几条规定的？") == []
    assert [(a.phrase, a.limit) for a in asked_quantities("寒假放几天？最多能布置多少页作业？")] == [("几天", ""), ("多少页", "max")]


def test_role_words_do_not_tie_a_number_to_the_question():
    passages = ["第五条 学校应当每年投保一次。"]
    assert not missing_quantity("学校的保安每年培训几次？", passages)  # 「学校」 counts as shared subject
    assert missing_quantity("学校的保安每年培训几次？", passages, ignore=("学校",))


def test_a_form_or_download_asked_for_must_be_named():
    passages = ["第二十五条 学校应当开展经常性的校园安全检查和隐患排查。"]
    assert missing_resource("安全检查的打分表模板在哪里可以下载？", passages)
    assert not missing_resource("安全检查的打分表模板在哪里可以下载？", ["附件：安全检查打分表模板，可在教育局网站下载。"])
    assert not missing_resource("学校要多久做一次安全检查？", passages)
    assert not missing_resource("学生带进学校的电话手表怎么管？", passages)  # a watch, not a hotline


def test_which_particular_school_is_never_in_a_policy_text():
    passages = ["第十二条 适龄儿童、少年在户籍所在地学校就近入学。"]
    assert missing_resource("我家的房子能上哪所小学？", passages)
    assert not missing_resource("孩子应该在哪里上小学？", passages)


def test_topic_coverage_counts_subject_words_not_frame_words():
    bm25 = _index()
    covered = topic_coverage("食堂饭菜要不要留样", PASSAGES, (), bm25)
    uncovered = topic_coverage("高考加分政策是什么", PASSAGES, (), bm25)
    assert covered > 0.5
    # 「政策」 occurs in the passages but only frames the question; 「高考」 is the subject and is absent
    assert uncovered == 0.0


def test_topic_coverage_does_not_join_characters_across_passages():
    split = ["第一条 学校应当加强家庭教育指导。", "第二条 学校应当减轻学生作业负担。"]
    bm25 = _index(split)
    # 「家庭作业」 is matched by most of its characters only when 「家庭」 and 「作业」 sit in one passage
    assert topic_coverage("家庭作业", split, (), bm25) == 0.0
    assert topic_coverage("家庭作业", ["".join(split)], (), bm25) == 1.0


# Idf weights for the tests below: common words weigh little, the words that name a subject weigh a lot.
_IDF = {"时间": 1.0, "保证": 1.0, "学生": 0.5, "学校": 0.5, "安全": 1.0, "检查": 1.0, "安全检查": 2.0}.get


def _idf(word):
    return _IDF(word) or 8.0


def test_a_number_sharing_only_a_common_word_is_no_answer():
    question = "学生每晚要保证睡够几个小时？"
    study = ["第五条 学生每日学习时间不超过六小时。"]
    assert not missing_quantity(question, study)  # without weights any shared word is enough
    assert missing_quantity(question, study, idf=_idf)
    assert not missing_quantity(question, ["第六条 学生每晚应当睡够九小时。"], idf=_idf)


def test_a_heading_names_the_subject_of_its_sentences():
    question = "宁波的学校每学期起码要搞几次安全检查？"
    passages = ["第十条 学校每学期应当进行不少于两次的安全检查。"]
    assert missing_quantity(question, passages, idf=_idf)  # 宁波 carries most of the weight
    assert not missing_quantity(question, passages, idf=_idf, headings=["宁波市学校安全条例 第十条"])


def test_role_words_are_kept_when_they_are_the_whole_subject():
    # Without 班主任 nothing would be left to tie the number to, and any number would do.
    assert missing_quantity("班主任至少要几名？", ["第三条 每班至少配备两名保安。"], ignore=("班主任",))
    assert not missing_quantity("班主任至少要几名？", ["第三条 每班至少配备一名班主任。"], ignore=("班主任",))


def test_each_asked_number_may_take_its_subject_from_its_own_sentence():
    question = "安全例会多长时间开一回？局长起码要亲自参加几次研究会？"
    passages = ["每季度召开一次安全例会。局长每年至少参加两次研究会。"]
    assert not missing_quantity(question, passages, idf=_idf)
    assert missing_quantity(question, ["每季度召开一次安全例会。"], idf=_idf)


def test_abbreviations_and_set_phrases_are_topic_words():
    index = _index(["国家实行九年义务教育制度。", "学校应当保障学生安全。"])
    # 义务教育 (a set phrase) is the whole subject: 一共 (a two-character abbreviation tag), 要读 (a modal
    # glued to a one-character verb) and 几年 (the asking) are not topic words.
    assert topic_coverage("义务教育一共要读几年？", ["国家实行九年义务教育制度。"], (), index) == 1.0
    assert topic_coverage("义务教育一共要读几年？", ["学校应当保障学生安全。"], (), index) == 0.0
    # 中小学生 (an abbreviation) and 家长会 count as topic words now
    assert topic_coverage("中小学生睡够几个小时？", ["学校应当保障学生安全。"], (), index) < 0.5
    assert topic_coverage("家长会开几次？", ["学校应当保障学生安全。"], (), index) == 0.0


def test_a_ratio_asked_with_shenme_is_a_quantity():
    assert [a.phrase for a in asked_quantities("保安和学生要按什么比例配？")] == ["什么比例"]
    assert missing_quantity("保安和学生要按什么比例配？", ["第九条 学校应当配备专职保安。"])
    assert not missing_quantity("保安和学生要按什么比例配？", ["第九条 学校保安按学生人数的百分之一配备。"])


def test_approximate_counts_are_not_questions_about_a_number():
    assert asked_quantities("区里借我们学校的体育场办一场几千人的招聘会，学校要负哪些责任？") == []
    assert asked_quantities("几十名代课老师聚到教育局门口，学校怎么应对？") == []
    assert [a.phrase for a in asked_quantities("学生几千人的学校要配几名校医？")] == ["几名"]


def test_a_fine_asked_for_is_an_amount_of_money():
    [asked] = asked_quantities("副校长没尽到职责，个人要挨多少罚款？")
    assert asked.units == "元"
    assert not missing_quantity("会被罚多少钱？", ["对承办者处10万元以上30万元以下罚款。"])  # 10万元 is an amount
    assert missing_quantity("副校长没尽到职责，个人要挨多少罚款？", ["第九十六条 其他负责人未履行职责的，处降级处分。"])


def test_a_fine_in_a_sanctions_chapter_needs_less_of_the_subject_repeated():
    # 许可 and 承办 are all the fine's sentence shares with the question: too little elsewhere, enough for a fine
    question = "没拿到许可就在操场办了上千人的晚会，承办单位会被罚多少钱？"
    fine = ["第二十条 未经安全许可的大型群众性活动由公安机关予以取缔，对承办者处10万元以上30万元以下罚款。"]
    assert missing_quantity(question, fine, idf=_idf, headings=["大型群众性活动安全管理条例 第三章 安全管理 > 第二十条"])
    assert not missing_quantity(question, fine, idf=_idf, headings=["大型群众性活动安全管理条例 第四章 法律责任 > 第二十条"])


def test_a_span_over_which_events_are_counted_is_no_time_limit():
    question = "发生安全事故后多长时间内要报告？"
    counted = ["一年内发生校园安全责任事故的，学校要及时向上级教育行政部门书面报告。"]
    assert missing_quantity(question, counted)
    assert not missing_quantity(question, ["发生安全事故后，学校应当在2小时内向教育行政部门报告。"])
    # the same words still state how many events count
    assert not missing_quantity("一年内发生几次事故会被一票否决？", ["一年内发生两次以上安全事故的，实行一票否决。"])
