"""智能机器人 (AI bot) channel end to end: encrypted JSON callbacks over HTTP, stream replies and refreshes."""

from __future__ import annotations

import time
import urllib.parse

import pytest

from api.wecom.aibot import StreamBook, strip_mentions
from api.wecom.dialog import NON_TEXT_REPLY, PENDING_TEXT
from api.wecom.render import format_answer
from api.wecom.store import STORE_FILE, WeComStore
from tests.test_wecom_crypto import D1_ECHOSTR, D1_NONCE, D1_PLAIN, D1_SIG, D1_TS, D2_BODY, D2_QUERY
from tests.wecom.wecom_fakes import CORP_ID, GatedAssistant, bot_callback, open_bot_reply

pytestmark = pytest.mark.shared  # real answers come from the shared law texts (laws_kb_dir)

QUESTION = "学生在学校受伤了，学校要承担什么责任"


def _message(text: str, msgid: str, *, user: str = "zhangsan", chattype: str = "single") -> dict:
    message = {
        "msgid": msgid,
        "aibotid": "AIBOTID",
        "chattype": chattype,
        "from": {"userid": user},
        "response_url": "https://qyapi.weixin.qq.com/cgi-bin/aibot/response?response_code=X",
        "msgtype": "text",
        "text": {"content": text},
    }
    if chattype == "group":
        message["chatid"] = "CHATID"
    return message


def _refresh(stream_id: str, msgid: str) -> dict:
    return {
        "msgid": msgid,
        "aibotid": "AIBOTID",
        "chattype": "single",
        "from": {"userid": "zhangsan"},
        "msgtype": "stream",
        "stream": {"id": stream_id},
    }


def test_url_verification_vector(start_wecom, laws_assistant):
    wecom = start_wecom(laws_assistant, wecom_max_skew_s=0)
    query = urllib.parse.urlencode(
        {"msg_signature": D1_SIG, "timestamp": D1_TS, "nonce": D1_NONCE, "echostr": D1_ECHOSTR}
    )
    response = wecom.http.get(f"/wecom/aibot/callback?{query}")
    assert response.status_code == 200 and response.content == D1_PLAIN.encode()
    bad = query.replace(D1_NONCE, "1700000002")
    assert wecom.http.get(f"/wecom/aibot/callback?{bad}").status_code == 403


def test_question_streams_until_finish_with_cited_answer(start_wecom, laws_assistant, gate):
    streaming = GatedAssistant(laws_assistant, gate=gate)
    wecom = start_wecom(streaming)

    first = open_bot_reply(wecom.post_bot(bot_callback(_message(QUESTION, "m-1"))))
    assert first["msgtype"] == "stream"
    stream = first["stream"]
    assert stream["finish"] is False
    assert "出处" not in stream["content"]
    assert stream["feedback"]["id"] == stream["id"]
    stream_id = stream["id"]

    # While the answer is held back, refreshes return the partial snapshot, unfinished.
    assert streaming.started.wait(5)
    partial = None
    for i in range(200):
        snap = open_bot_reply(wecom.post_bot(bot_callback(_refresh(stream_id, f"r-{i}"))))["stream"]
        assert snap["id"] == stream_id and snap["finish"] is False
        if snap["content"] != PENDING_TEXT:
            partial = snap["content"]
            break
        time.sleep(0.01)
    assert partial and "〔" not in partial  # first line only, no sources yet

    gate.set()
    snapshots = []
    for i in range(500):
        snap = open_bot_reply(wecom.post_bot(bot_callback(_refresh(stream_id, f"s-{i}"))))["stream"]
        snapshots.append(snap)
        if snap["finish"]:
            break
        time.sleep(0.01)
    final = snapshots[-1]
    assert final["finish"] is True
    assert final["content"] == format_answer(laws_assistant.ask(QUESTION))
    assert final["content"].startswith(partial)  # content is cumulative, never a delta
    assert "出处：" in final["content"] and "条〕" in final["content"]
    # After finishing, further refreshes keep returning the final snapshot.
    again = open_bot_reply(wecom.post_bot(bot_callback(_refresh(stream_id, "t-1"))))["stream"]
    assert again == {"id": stream_id, "finish": True, "content": final["content"]}


def test_official_group_message_vector_strips_the_mention(start_wecom, laws_assistant):
    recorder = GatedAssistant(laws_assistant)
    wecom = start_wecom(recorder, wecom_max_skew_s=0)
    reply = open_bot_reply(wecom.http.post(f"/wecom/aibot/callback?{D2_QUERY}", content=D2_BODY.encode()))
    assert reply["msgtype"] == "stream"
    wecom.settle()
    assert recorder.calls == [("什么是勾股定理？", None)]
    # WeCom's retry of the same msgid gets the same stream, and no second answer is computed.
    retry = open_bot_reply(wecom.http.post(f"/wecom/aibot/callback?{D2_QUERY}", content=D2_BODY.encode()))
    assert retry["stream"]["id"] == reply["stream"]["id"] and retry["stream"]["finish"] is True
    wecom.settle()
    assert len(recorder.calls) == 1


def test_set_role_in_a_group_chat_changes_the_role_used(start_wecom, laws_assistant):
    recorder = GatedAssistant(laws_assistant)
    wecom = start_wecom(recorder)
    confirm = open_bot_reply(
        wecom.post_bot(bot_callback(_message("@政策助手\u2005设置角色 班主任", "g-1", chattype="group")))
    )
    assert confirm["stream"]["finish"] is True
    assert confirm["stream"]["content"].startswith("已将您的角色设置为「班主任」")
    open_bot_reply(
        wecom.post_bot(bot_callback(_message("@政策助手 我的安全职责是什么", "g-2", chattype="group")))
    )
    wecom.settle()
    assert recorder.calls == [("我的安全职责是什么", "班主任")]


def test_feedback_event_is_accepted_and_stored(start_wecom, laws_assistant):
    wecom = start_wecom(laws_assistant)
    first = open_bot_reply(wecom.post_bot(bot_callback(_message(QUESTION, "f-1"))))
    feedback_id = first["stream"]["feedback"]["id"]
    event = {
        "msgid": "f-2",
        "create_time": int(time.time()),
        "aibotid": "AIBOTID",
        "chattype": "single",
        "from": {"corpid": CORP_ID, "userid": "zhangsan"},
        "msgtype": "event",
        "event": {
            "eventtype": "feedback_event",
            "feedback_event": {
                "id": feedback_id,
                "type": 2,
                "content": "不够具体",
                "inaccurate_reason_list": [2, 3],
            },
        },
    }
    for _ in range(2):  # a retried event is stored once
        response = wecom.post_bot(bot_callback(event))
        assert response.status_code == 200 and response.content == b""  # feedback must get an empty reply
    wecom.settle()
    rows = WeComStore(wecom.settings.kb / STORE_FILE).feedback()
    assert len(rows) == 1
    assert rows[0]["feedback_id"] == feedback_id and rows[0]["kind"] == 2 and rows[0]["reasons"] == "2,3"
    assert rows[0]["question"] == QUESTION and rows[0]["user_id"] == "zhangsan"


def test_enter_chat_gets_a_welcome_and_images_a_hint(start_wecom, laws_assistant):
    wecom = start_wecom(laws_assistant)
    enter = {
        "msgid": "e-1",
        "create_time": int(time.time()),
        "aibotid": "AIBOTID",
        "chattype": "single",
        "from": {"userid": "lisi"},
        "msgtype": "event",
        "event": {"eventtype": "enter_chat"},
    }
    welcome = open_bot_reply(wecom.post_bot(bot_callback(enter)))
    assert welcome["msgtype"] == "text" and "设置角色" in welcome["text"]["content"]
    image = {
        "msgid": "i-1",
        "aibotid": "AIBOTID",
        "chattype": "single",
        "from": {"userid": "lisi"},
        "msgtype": "image",
        "image": {"url": "https://example.invalid/x"},
    }
    hint = open_bot_reply(wecom.post_bot(bot_callback(image)))
    assert hint["stream"]["finish"] is True and hint["stream"]["content"] == NON_TEXT_REPLY


def test_forged_stale_and_misaddressed_callbacks_are_refused(start_wecom, laws_assistant):
    wecom = start_wecom(laws_assistant)
    good = bot_callback(_message(QUESTION, "x-1"))
    params = dict(urllib.parse.parse_qsl(good.query))
    forged = type(good)(urllib.parse.urlencode({**params, "msg_signature": "f" * 40}), good.body)
    assert wecom.post_bot(forged).status_code == 403
    stale = bot_callback(_message(QUESTION, "x-2"), timestamp=str(int(time.time()) - 3600))
    assert wecom.post_bot(stale).status_code == 403
    # Encrypted for a self-built app (ReceiveId = CorpID) instead of the AI bot's "".
    assert wecom.post_bot(bot_callback(_message(QUESTION, "x-3"), receive_id=CORP_ID)).status_code == 403
    assert wecom.post_bot(type(good)(good.query, b"not json")).status_code == 400
    wecom.settle()


def test_unconfigured_bot_names_the_settings(start_wecom, laws_assistant):
    wecom = start_wecom(laws_assistant, wecom_bot_token=None, wecom_bot_aes_key=None)
    response = wecom.post_bot(bot_callback(_message(QUESTION, "u-1")))
    assert response.status_code == 404
    assert (
        "DUTY_WECOM_BOT_TOKEN" in response.json()["detail"]
        and "DUTY_WECOM_BOT_AES_KEY" in response.json()["detail"]
    )


def test_stream_past_its_deadline_is_finished_with_what_it_has():
    now = [1000.0]
    book = StreamBook(deadline_s=300, clock=lambda: now[0])
    stream_id = book.open("m", "u", "q", PENDING_TEXT)
    book.update(stream_id, "第一行\n", finished=False)
    now[0] += 299
    assert book.snapshot(stream_id) == ("第一行\n", False)
    now[0] += 2
    content, finished = book.snapshot(stream_id)
    assert finished and content.startswith("第一行") and "超时" in content
    book.update(stream_id, "late answer", finished=True)  # a late worker cannot change a finished stream
    assert book.snapshot(stream_id) == (content, True)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("@教学助手 什么是勾股定理？", "什么是勾股定理？"),
        ("@政策助手\u2005班主任职责", "班主任职责"),
        ("@a @b  校车要求", "校车要求"),
        ("校车要求 @政策助手", "校车要求"),
        ("@政策助手", ""),
        ("没有提到谁", "没有提到谁"),
    ],
)
def test_strip_mentions(raw, expected):
    assert strip_mentions(raw) == expected


def test_draft_request_finishes_its_stream_with_the_draft(start_wecom, laws_assistant):
    wecom = start_wecom(laws_assistant)
    request = "帮我写述职报告的履职情况部分，我是分管副校长。我们今年组织了3次消防演练。"
    stream_id = open_bot_reply(wecom.post_bot(bot_callback(_message(request, "d-1"))))["stream"]["id"]
    final = None
    for i in range(500):
        snap = open_bot_reply(wecom.post_bot(bot_callback(_refresh(stream_id, f"d-r-{i}"))))["stream"]
        if snap["finish"]:
            final = snap["content"]
            break
        time.sleep(0.01)
    assert final is not None
    assert "我们今年组织了3次消防演练。" in final and "附：引用依据" in final
    assert "分管副校长" in final
