"""Self-built app channel end to end: encrypted callbacks over HTTP → our routes → fake WeCom API on loopback."""

from __future__ import annotations

import re
import statistics
import time
import urllib.parse

import pytest

from api.wecom.dialog import NON_TEXT_REPLY
from api.wecom.render import format_answer, reply_for
from api.wecom.splitter import utf8_len
from assistant.types import Answer, Citation
from tests.test_wecom_crypto import A1_QUERY, A2_NONCE, A2_OUTER_XML, A2_SIG, A2_TS
from tests.wecom.wecom_fakes import (
    AGENT_ID,
    FixedAssistant,
    GatedAssistant,
    app_callback,
    event_xml,
    text_xml,
)

pytestmark = pytest.mark.shared  # real answers come from the shared law texts (laws_kb_dir)

# Official vectors (doc 90968, spec §5.1): valid only with the timestamp check off (DUTY_WECOM_MAX_SKEW_S=0).
A2_QUERY = urllib.parse.urlencode({"msg_signature": A2_SIG, "timestamp": A2_TS, "nonce": A2_NONCE})
A2_BODY = A2_OUTER_XML

QUESTION = "学生在学校受伤了，学校要承担什么责任"


def test_url_verification_returns_official_plaintext_verbatim(start_wecom, laws_assistant):
    wecom = start_wecom(laws_assistant, wecom_max_skew_s=0)
    response = wecom.http.get(f"/wecom/app/callback?{A1_QUERY}")
    assert response.status_code == 200
    assert response.content == b"1616140317555161061"
    assert response.headers["content-type"].startswith("text/plain")


def test_url_verification_with_bad_signature_is_403(start_wecom, laws_assistant):
    wecom = start_wecom(laws_assistant, wecom_max_skew_s=0)
    response = wecom.http.get(f"/wecom/app/callback?{A1_QUERY.replace('nonce=263014780', 'nonce=263014781')}")
    assert response.status_code == 403
    # An unencoded '+' in echostr turns into a space and cannot verify either (spec §1.2 pitfall).
    raw = urllib.parse.unquote(A1_QUERY.split("&echostr=")[1])
    response = wecom.http.get(f"/wecom/app/callback?{A1_QUERY.split('&echostr=')[0]}&echostr={raw}")
    assert response.status_code == 403


def test_encrypted_question_is_answered_with_citations(start_wecom, laws_assistant, fake_wecom):
    wecom = start_wecom(laws_assistant)
    response = wecom.post_app(app_callback(text_xml("zhangsan", QUESTION, "7001")))
    assert response.status_code == 200 and response.content == b""

    (sent,) = fake_wecom.wait_delivered(1)
    assert sent["touser"] == "zhangsan"
    assert sent["msgtype"] == "text" and sent["agentid"] == int(AGENT_ID)
    content = sent["text"]["content"]
    expected = format_answer(laws_assistant.ask(QUESTION))
    assert content == expected
    assert "出处：" in content
    assert "[1]〔《" in content and "第二十" in content and "条〕" in content
    assert utf8_len(content) <= 2048
    assert fake_wecom.gettoken_calls == [{"corpid": "wx5823bf96d3bd56c7", "corpsecret": "s3cret-app-secret"}]


def test_official_vector_retried_three_times_is_answered_once(start_wecom, laws_assistant, fake_wecom):
    wecom = start_wecom(laws_assistant, wecom_max_skew_s=0)
    for _ in range(3):  # WeCom retries a callback up to three times
        response = wecom.http.post(f"/wecom/app/callback?{A2_QUERY}", content=A2_BODY)
        assert response.status_code == 200 and response.content == b""
    wecom.settle()
    assert [m["touser"] for m in fake_wecom.delivered] == ["mycreate"]
    # A replay after the answer went out is refused as well.
    assert wecom.http.post(f"/wecom/app/callback?{A2_QUERY}", content=A2_BODY).status_code == 200
    wecom.settle()
    assert len(fake_wecom.delivered) == 1


def test_slow_answer_still_acknowledged_at_once(start_wecom, laws_assistant, fake_wecom, gate):
    slow = GatedAssistant(laws_assistant, gate=gate)
    wecom = start_wecom(slow)
    latencies = []
    n = 20
    for i in range(n):
        callback = app_callback(text_xml(f"teacher{i}", QUESTION, f"8{i:03d}"))
        t0 = time.perf_counter()
        response = wecom.post_app(callback)
        latencies.append(time.perf_counter() - t0)
        assert response.status_code == 200 and response.content == b""
    assert slow.started.wait(5)
    assert fake_wecom.delivered == []  # every answer is still being computed
    median_ms, max_ms = statistics.median(latencies) * 1000, max(latencies) * 1000
    print(
        f"\nack latency over {n} callbacks while answers were blocked: median {median_ms:.1f} ms, max {max_ms:.1f} ms"
    )
    assert max(latencies) < 1.0  # generous: only proves the ack does not wait for the answer

    gate.set()
    delivered = fake_wecom.wait_delivered(n)
    assert sorted(m["touser"] for m in delivered) == sorted(f"teacher{i}" for i in range(n))


def _long_answer() -> Answer:
    laws = ["中华人民共和国未成年人保护法", "中小学幼儿园安全管理办法", "学校食品安全与营养健康管理规定"]
    lines, citations = ["作为班主任，现有政策文件中规定的安全职责与要求如下："], []
    for n in range(1, 12):
        quote = f"学校应当建立安全管理制度，落实第{n}项安全责任，定期开展安全教育和应急演练，" * 3
        lines.append(f"{n}. 《{laws[n % 3]}》第{n + 20}条：「{quote}」[{n}]")
        citations.append(
            Citation(n, f"c{n}", laws[n % 3], f"第三章 安全管理 > 第{n + 20}条", quote, "x.md", 0, len(quote))
        )
    lines.append("以上均为原文摘录，请以所引文件原文为准。")
    return Answer("问题", "\n".join(lines), True, "extractive", tuple(citations))


def test_five_thousand_byte_answer_arrives_as_ordered_pieces(start_wecom, fake_wecom):
    answer = _long_answer()
    reply = reply_for(answer)
    full = reply.text()
    assert 4500 <= utf8_len(full) <= 5500
    wecom = start_wecom(FixedAssistant(answer))
    wecom.post_app(app_callback(text_xml("lisi", "班主任的职责", "9001")))
    wecom.settle()
    pieces = [m["text"]["content"] for m in fake_wecom.delivered]
    sizes = [utf8_len(p) for p in pieces]
    print(f"\nanswer of {utf8_len(full)} bytes sent as {len(pieces)} pieces of {sizes} bytes")
    assert len(pieces) >= 3
    assert all(size <= 2048 for size in sizes)
    bodies = []
    for i, piece in enumerate(pieces, 1):
        tag, _, rest = piece.partition("\n")
        assert tag == f"（{i}/{len(pieces)}）"  # arrival order is reading order
        body, _, sources = rest.partition("\n\n出处：\n")
        bodies.append(body)
        # Each message carries the source line of every marker it contains, whole.
        markers = re.findall(r"\[(\d+)\]", body)
        assert markers and sources.splitlines() == [reply.sources[int(n)] for n in markers]
    assert "".join(bodies).replace("\n", "") == answer.answer.replace("\n", "")
    for line in answer.answer.splitlines():  # no quoted line is cut between two messages
        assert any(line in body.splitlines() for body in bodies), line


def test_access_token_refreshed_once_after_42001(start_wecom, laws_assistant, fake_wecom):
    wecom = start_wecom(laws_assistant)
    wecom.post_app(app_callback(text_xml("wangwu", "帮助", "9101")))
    fake_wecom.wait_delivered(1)
    fake_wecom.expire_next_send = 1
    wecom.post_app(app_callback(text_xml("wangwu", QUESTION, "9102")))
    fake_wecom.wait_delivered(2)
    wecom.settle()
    assert len(fake_wecom.gettoken_calls) == 2  # the first token, then exactly one refresh
    codes = [(r.errcode, r.access_token) for r in fake_wecom.send_calls]
    assert codes[0][0] == 0 and codes[1][0] == 42001 and codes[2][0] == 0
    assert codes[1][1] == codes[0][1] != codes[2][1]  # the retry used the new token
    assert "〔《" in fake_wecom.delivered[1]["text"]["content"]


def test_bad_signature_is_403_and_nothing_is_sent(start_wecom, laws_assistant, fake_wecom):
    wecom = start_wecom(laws_assistant)
    callback = app_callback(text_xml("mallory", QUESTION, "9201"))
    params = dict(urllib.parse.parse_qsl(callback.query))
    forged = type(callback)(urllib.parse.urlencode({**params, "msg_signature": "0" * 40}), callback.body)
    assert wecom.post_app(forged).status_code == 403
    tampered = type(callback)(
        callback.query, callback.body.replace(b"<Encrypt><![CDATA[", b"<Encrypt><![CDATA[A")
    )
    assert wecom.post_app(tampered).status_code == 403
    wecom.settle()
    assert fake_wecom.send_calls == []


def test_stale_and_future_timestamps_are_refused(start_wecom, laws_assistant, fake_wecom):
    wecom = start_wecom(laws_assistant)
    now = int(time.time())
    for ts in (now - 301 - 5, now + 306):
        response = wecom.post_app(app_callback(text_xml("zhaoliu", QUESTION, f"93{ts}"), timestamp=str(ts)))
        assert response.status_code == 403
        assert "DUTY_WECOM_MAX_SKEW_S" in response.json()["detail"]
    wecom.settle()
    assert fake_wecom.send_calls == []


def test_wrong_receive_id_is_refused(start_wecom, laws_assistant, fake_wecom):
    wecom = start_wecom(laws_assistant)
    response = wecom.post_app(app_callback(text_xml("x", QUESTION, "9401"), receive_id="wxOTHERCORP"))
    assert response.status_code == 403
    assert "DUTY_WECOM_CORP_ID" in response.json()["detail"]


BOMB = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><xml><Encrypt>&lol3;</Encrypt></xml>'
)


def test_xml_bombs_are_rejected_outside_and_inside_the_ciphertext(start_wecom, laws_assistant, fake_wecom):
    wecom = start_wecom(laws_assistant)
    callback = app_callback(text_xml("x", QUESTION, "9501"))
    assert wecom.post_app(type(callback)(callback.query, BOMB.encode())).status_code == 400
    inner = BOMB.replace("<Encrypt>&lol3;</Encrypt>", "<MsgType>text</MsgType><Content>&lol3;</Content>")
    assert wecom.post_app(app_callback(inner)).status_code == 400  # validly signed, still refused
    assert (
        wecom.post_app(type(callback)(callback.query, b"<xml>" + b"a" * 70_000 + b"</xml>")).status_code
        == 413
    )
    wecom.settle()
    assert fake_wecom.send_calls == []


def test_set_role_command_changes_the_role_used(start_wecom, laws_assistant, fake_wecom, tmp_path):
    roles_file = tmp_path / "roles.yaml"
    roles_file.write_text("zhangsan: 校长\n", encoding="utf-8")
    recorder = GatedAssistant(laws_assistant)
    wecom = start_wecom(recorder, wecom_roles_file=roles_file)

    def exchange(text: str, msg_id: str) -> str:
        before = len(fake_wecom.delivered)
        wecom.post_app(app_callback(text_xml("zhangsan", text, msg_id)))
        wecom.settle()
        return "".join(m["text"]["content"] for m in fake_wecom.delivered[before:])

    first = exchange("我的安全职责是什么", "9601")
    confirm = exchange("设置角色 班主任", "9602")
    second = exchange("我的安全职责是什么", "9603")

    assert [role for _, role in recorder.calls] == ["校长", "班主任"]  # mapping file, then the user's choice
    assert confirm.startswith("已将您的角色设置为「班主任」")
    assert "作为校长" in first and "作为班主任" in second
    assert "〔《" in second


def test_non_text_messages_and_events(start_wecom, laws_assistant, fake_wecom):
    wecom = start_wecom(laws_assistant)
    image = text_xml("lisi", "", "9701", msg_type="image")
    assert wecom.post_app(app_callback(image)).status_code == 200
    assert wecom.post_app(app_callback(event_xml("lisi", "enter_agent"))).status_code == 200
    assert wecom.post_app(app_callback(event_xml("lisi", "subscribe", 1700000000))).status_code == 200
    assert (
        wecom.post_app(app_callback(event_xml("lisi", "subscribe", 1700000000))).status_code == 200
    )  # retry
    wecom.settle()
    replies = [m["text"]["content"] for m in fake_wecom.delivered]
    assert len(replies) == 2
    assert NON_TEXT_REPLY in replies
    assert any("设置角色 班主任" in r for r in replies)  # the welcome explains the role command


def test_plain_values_without_cdata_are_parsed(start_wecom, laws_assistant, fake_wecom):
    wecom = start_wecom(laws_assistant)
    wecom.post_app(app_callback(text_xml("zhouqi", "帮助", "9801", cdata=False)))
    (sent,) = fake_wecom.wait_delivered(1)
    assert sent["touser"] == "zhouqi" and "政策助手" in sent["text"]["content"]


def test_unconfigured_channel_names_the_settings(start_wecom, laws_assistant):
    wecom = start_wecom(laws_assistant, wecom_token=None, wecom_aes_key="")
    response = wecom.http.get(f"/wecom/app/callback?{A1_QUERY}")
    assert response.status_code == 404
    assert (
        "DUTY_WECOM_TOKEN" in response.json()["detail"] and "DUTY_WECOM_AES_KEY" in response.json()["detail"]
    )


def test_missing_send_settings_is_503_naming_them(start_wecom, laws_assistant):
    wecom = start_wecom(laws_assistant, wecom_secret=None, wecom_max_skew_s=0)
    assert (
        wecom.http.get(f"/wecom/app/callback?{A1_QUERY}").status_code == 200
    )  # the URL can still be verified
    response = wecom.http.post(f"/wecom/app/callback?{A2_QUERY}", content=A2_BODY)
    assert response.status_code == 503
    assert "DUTY_WECOM_SECRET" in response.json()["detail"]


DRAFT_REQUEST = "帮我写述职报告的履职情况部分，单位：某某镇中心校。我们今年开展了12次安全检查，整改隐患5处，组织应急疏散演练4次。"


def test_draft_request_is_answered_with_a_cited_draft_in_ordered_pieces(start_wecom, laws_assistant, fake_wecom, tmp_path):
    roles_file = tmp_path / "roles.yaml"
    roles_file.write_text("wangxiaozhang: 校长\n", encoding="utf-8")
    wecom = start_wecom(laws_assistant, wecom_roles_file=roles_file)
    wecom.post_app(app_callback(text_xml("wangxiaozhang", DRAFT_REQUEST, "9801")))
    wecom.settle()
    pieces = [m["text"]["content"] for m in fake_wecom.delivered if m["touser"] == "wangxiaozhang"]
    text = "".join(pieces)
    assert len(pieces) >= 2 and all(utf8_len(p) <= 2048 for p in pieces)
    assert "我们今年开展了12次安全检查，整改隐患5处，组织应急疏散演练4次。" in text  # the user's facts, verbatim
    assert "附：引用依据" in text and re.search(r"\[1\] 《[^》]+》第[一二三四五六七八九十百]+条：“", text)
    assert text.rstrip().endswith("或用命令行 duty draft 生成。")
    # every quoted duty is text of the cited law
    for title, quote in re.findall(r"\[\d+\] 《([^》]+)》第[^：]+：“([^”]+)”", text):
        source = next(d for d in laws_assistant.kb.docs.values() if d.meta.title == title)
        assert quote in source.text
