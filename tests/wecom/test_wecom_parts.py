"""The WeCom channel's parts on their own: splitter, citation lines, commands, roles, replay cache, rate
limiter, and the API client against the loopback fake (token single-flight, retries, log redaction)."""

from __future__ import annotations

import logging
import threading

import httpx
import pytest

from api.wecom.client import WeComAPIError, WeComClient
from api.wecom.common import Dispatcher
from api.wecom.dedupe import ReplayCache, replay_ttl
from api.wecom.render import Reply, compact_citation
from api.wecom.roles import Command, RoleBook, parse_command
from api.wecom.sender import RateLimiter, ReplySender
from api.wecom.splitter import split_message, utf8_len
from api.wecom.store import WeComStore
from assistant.types import Citation
from tests.wecom.wecom_fakes import CORP_ID, SECRET

# ------------------------------------------------------------------------------------------ splitter


def test_short_text_is_one_piece_without_tag():
    assert split_message("你好\n") == ["你好"]


def test_pieces_respect_the_byte_limit_and_keep_lines_whole():
    lines = [f"第{i}行：" + "学校安全工作责任重大。" * 8 for i in range(40)]
    text = "\n".join(lines)
    pieces = split_message(text, limit=2048)
    assert all(utf8_len(p) <= 2048 for p in pieces)
    bodies = [p.partition("\n")[2] for p in pieces]
    assert [line for body in bodies for line in body.splitlines()] == lines


def test_a_line_longer_than_a_piece_is_cut_at_sentence_ends_then_characters():
    long_sentences = "校车驾驶人应当遵守道路交通安全法律法规。" * 200
    no_punctuation = "安" * 3000
    for text in (long_sentences, no_punctuation):
        pieces = split_message(text, limit=2048)
        assert all(utf8_len(p) <= 2048 for p in pieces)
        assert "".join(p.partition("\n")[2] for p in pieces) == text  # nothing lost, no broken character
    assert all(p.endswith("。") for p in split_message(long_sentences, limit=2048))


def test_max_pieces_drops_whole_lines_and_says_so():
    text = "\n".join(f"[{i}]〔《学校安全条例》第{i}条〕" for i in range(400))
    pieces = split_message(text, limit=2048, max_pieces=2)
    assert len(pieces) == 2 and all(utf8_len(p) <= 2048 for p in pieces)
    assert "仅发送前 2 段" in pieces[-1]
    for line in pieces[-1].splitlines()[1:-1]:
        assert line == "" or (line.startswith("[") and line.endswith("〕"))


def test_each_piece_carries_the_sources_it_cites():
    sources = {n: f"[{n}]〔《中小学幼儿园安全管理办法》第{n}条〕" for n in range(1, 31)}
    body = "\n".join(f"{n}. 「" + "学校应当建立健全安全制度。" * 6 + f"」[{n}]" for n in range(1, 31))
    pieces = Reply(body, sources).pieces(limit=2048)
    assert len(pieces) > 1 and all(utf8_len(p) <= 2048 for p in pieces)
    seen = []
    for piece in pieces:
        text, _, footer = piece.partition("\n\n出处：\n")
        cited = [line.rsplit("[", 1)[1].rstrip("]") for line in text.splitlines()[1:]]
        assert footer.splitlines() == [sources[int(n)] for n in cited]
        seen += cited
    assert seen == [str(n) for n in range(1, 31)]


def test_compact_citation_lines():
    def cite(title: str, section: str) -> str:
        return compact_citation(Citation(1, "c", title, section, "q", "s", 0, 1))

    assert (
        cite("校车安全管理条例", "第六章 校车乘车安全 > 第四十一条") == "〔《校车安全管理条例》第四十一条〕"
    )
    assert cite("教育法", "第五章 > 第四十四条之一 > (二)") == "〔《教育法》第四十四条之一 (二)〕"
    assert cite("述职报告1", "四、点评通报机制 > 1、") == "〔《述职报告1》四、点评通报机制 1、〕"
    long = cite(
        "述职报告2", "三、落实推进“一岗双责”制的要求、举措以及考核办法 > (二)明确职责,强化责任,健全制度 > 2、"
    )
    assert (
        long.startswith("〔《述职报告2》…")
        and long.endswith("健全制度 2、〕")
        and len(long) == len("〔《述职报告2》〕") + 40
    )


# ------------------------------------------------------------------------------------ commands, roles


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("设置角色 班主任", Command("set_role", "班主任")),
        ("设置角色：校长", Command("set_role", "校长")),
        ("设置角色为分管副校长", Command("set_role", "分管副校长")),
        ("切换角色 老师", Command("set_role", "老师")),
        ("我是班主任", Command("set_role", "班主任")),
        ("我的角色", Command("show_role")),
        ("清除角色", Command("clear_role")),
        ("帮助", Command("help")),
        ("我是新来的老师，要做什么", None),
        ("班主任的安全职责是什么", None),
    ],
)
def test_parse_command(text, command):
    assert parse_command(text) == command


def test_role_book_prefers_the_users_choice_over_the_mapping_file(tmp_path):
    mapping = tmp_path / "roles.yaml"
    mapping.write_text("zhangsan: 校长\nlisi: 老师\nwangwu: 宇航员\n", encoding="utf-8")
    book = RoleBook(WeComStore(tmp_path / "kb" / "wecom.sqlite"), mapping)
    assert book.role_for("zhangsan") == "校长"
    assert book.role_for("lisi") == "教师"  # aliases are canonicalised
    assert book.role_for("wangwu") is None  # unknown roles in the file are skipped
    assert book.set_role("zhangsan", "班主任") == "班主任"
    assert book.role_for("zhangsan") == "班主任"
    with pytest.raises(ValueError, match="可选"):
        book.set_role("zhangsan", "宇航员")
    assert book.clear_role("zhangsan") == "校长"
    # Stored per user under the KB directory: a new book on the same file sees the choice.
    book.set_role("zhaoliu", "教育局")
    assert RoleBook(WeComStore(tmp_path / "kb" / "wecom.sqlite")).role_for("zhaoliu") == "教育局"


# -------------------------------------------------------------------------------- replay cache, limits


def test_replay_cache_forgets_after_its_ttl():
    now = [0.0]
    cache = ReplayCache(ttl_s=600, clock=lambda: now[0])
    assert cache.first_time("msg:1") and not cache.first_time("msg:1")
    now[0] = 599
    assert not cache.first_time("msg:1")
    now[0] = 1200
    assert cache.first_time("msg:1")


def test_replays_are_remembered_longer_than_the_timestamp_window():
    assert replay_ttl(300) == 660.0 and replay_ttl(3600) > 2 * 3600 and replay_ttl(0) == 600.0


def test_rate_limiter_spaces_sends_beyond_thirty_a_minute():
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    assert [limiter.reserve("u") for _ in range(30)] == [0.0] * 30
    assert limiter.reserve("u") == pytest.approx(60.0)
    assert limiter.reserve("other") == 0.0
    now[0] = 61
    assert limiter.reserve("u") == pytest.approx(0.0)


def test_sender_waits_for_the_limit_and_keeps_order():
    waits: list[float] = []
    sent: list[str] = []

    class Client:
        def send_text(self, user_id: str, content: str) -> None:
            sent.append(content)

    now = [0.0]
    sender = ReplySender(
        Client(), limiter=RateLimiter(((2, 60.0),), clock=lambda: now[0]), sleep=waits.append
    )
    assert sender.send("u", ["a", "b", "c"]) == 3
    assert sent == ["a", "b", "c"] and waits == [pytest.approx(60.0)]


def test_dispatcher_refuses_work_beyond_its_queue():
    release = threading.Event()
    dispatcher = Dispatcher(max_workers=1, max_pending=2)
    try:
        assert dispatcher.submit(release.wait, 5) and dispatcher.submit(release.wait, 5)
        assert not dispatcher.submit(release.wait, 5)
    finally:
        release.set()
        assert dispatcher.wait_idle(5)
        dispatcher.shutdown()


# ------------------------------------------------------------------------------------------ API client


@pytest.fixture
def client(fake_wecom):
    c = WeComClient(
        api_base=fake_wecom.base_url, corp_id=CORP_ID, secret=SECRET, agent_id=1000002, backoff_s=0
    )
    yield c
    c.close()


def test_token_is_cached_and_refreshed_single_flight(client, fake_wecom):
    client.send_text("u0", "一")
    client.send_text("u0", "二")
    assert len(fake_wecom.gettoken_calls) == 1
    fake_wecom.valid_token = None  # WeCom invalidates the token early: every in-flight send sees 40014
    errors: list[BaseException] = []

    def send(i: int) -> None:
        try:
            client.send_text(f"u{i}", f"消息{i}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == []
    assert len(fake_wecom.gettoken_calls) == 2  # eight rejected sends, one refresh
    assert len(fake_wecom.delivered) == 10


def test_system_busy_is_retried_a_bounded_number_of_times(client, fake_wecom):
    fake_wecom.busy_next = 2
    client.send_text("u", "重试")
    assert [r.errcode for r in fake_wecom.send_calls] == [-1, -1, 0]
    fake_wecom.busy_next = 3
    with pytest.raises(WeComAPIError) as info:
        client.send_text("u", "放弃")
    assert info.value.errcode == -1


def test_unreachable_api_raises_after_retries():
    sleeps: list[float] = []
    c = WeComClient(
        api_base="http://127.0.0.1:9",
        corp_id=CORP_ID,
        secret=SECRET,
        agent_id=1,
        backoff_s=0.01,
        sleep=sleeps.append,
        timeout_s=2,
    )
    with pytest.raises(httpx.TransportError):
        c.send_text("u", "x")
    assert sleeps == [0.01, 0.02]
    c.close()


def test_wrong_secret_error_names_the_setting(fake_wecom):
    c = WeComClient(api_base=fake_wecom.base_url, corp_id=CORP_ID, secret="wrong", agent_id=1)
    with pytest.raises(WeComAPIError, match="DUTY_WECOM_SECRET"):
        c.send_text("u", "x")
    c.close()


def test_logs_never_contain_the_secret_or_token(client, fake_wecom, caplog):
    with caplog.at_level(logging.DEBUG):
        client.send_text("u", "日志")
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "gettoken" in text and "message/send" in text  # httpx did log the requests…
    assert SECRET not in text and fake_wecom.valid_token not in text  # …without the credentials
