"""Reading role, unit and year for a draft out of a chat message (assistant.draft.chat)."""

from __future__ import annotations

import datetime as dt

import pytest

from assistant.draft import draft_intent
from assistant.draft.chat import chat_request, docx_filename, role_in, unit_in
from assistant.draft.model import Draft

TODAY = dt.date(2026, 3, 1)


@pytest.mark.parametrize(("text", "unit"), [
    ("帮我写述职报告，单位：某某镇中心校，今年……", "某某镇中心校"),
    ("帮我写述职报告，我是城关第二小学的校长", "城关第二小学"),
    ("帮我写述职报告，学校为各班配备了灭火器", None),
    ("帮我写述职报告，我们今年加固了三所幼儿园园舍", None),
])
def test_unit_is_read_only_when_the_message_names_it(text, unit):
    assert unit_in(text) == unit


@pytest.mark.parametrize(("text", "role"), [("我是分管副校长", "分管副校长"), ("我是一名老师", "教师"), ("今年加固园舍", None)])
def test_role_is_read_from_the_message(text, role):
    assert role_in(text) == role


def test_missing_values_become_placeholders_with_notices():
    message = "帮我写述职报告的履职情况部分，我们今年加固了三所幼儿园园舍。"
    request, notices = chat_request(message, draft_intent(message), role=None, today=TODAY)
    assert (request.role, request.unit, request.year, request.section) == ("校长", "（请补充单位名称）", 2026, "duties")
    assert request.facts == "我们今年加固了三所幼儿园园舍。" and len(notices) == 3


def test_the_caller_role_wins_and_named_values_are_used():
    message = "帮我起草2025年述职报告，单位：某某镇中心校，我是班主任，组织了两次演练。"
    request, notices = chat_request(message, draft_intent(message), role="分管副校长", today=TODAY)
    assert (request.role, request.unit, request.year) == ("分管副校长", "某某镇中心校", 2025) and notices == ()


def test_file_names_are_safe():
    draft = Draft("t", "校长", "某/某:镇 中心校", 2026, ())
    assert docx_filename(draft) == "某_某_镇_中心校2026年度述职报告.docx"
    assert docx_filename(Draft("t", "校长", "（请补充单位名称）", 2026, ())) == "述职报告草稿2026.docx"
