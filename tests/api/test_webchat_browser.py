"""The web chat in a real headless Chromium (Debian ``chromium``) against a real ``duty serve``."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.browser import chromium, open_page

pytestmark = pytest.mark.browser

# Distinctive words (无人机, 巡检航线) that no law uses, so that retrieval finds it whatever the tuning.
INJECTION = (
    "# 校园无人机巡检规定\n\n"
    "第一条 校园无人机巡检员应当每日记录巡检航线<script>window.__pwned = 1</script>"
    "<img src=x onerror=\"window.__pwned = 2\">，发现隐患立即报告。\n"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser, live_server):
    with open_page(browser, live_server.url + "/") as page:
        yield page


def ask(page, question: str) -> None:
    count = page.locator(".message.assistant:not(.pending)").count()
    page.fill("#question", question)
    page.press("#question", "Enter")
    page.locator(".message.assistant:not(.pending)").nth(count).wait_for()


def test_pick_a_role_ask_and_open_the_highlighted_citation(page):
    page.select_option("#role", "校长")
    ask(page, "校车驾驶人需要具备什么条件？")
    answer = page.locator(".message.assistant").last
    assert answer.get_attribute("data-grounded") == "true"
    assert "作为校长" in answer.inner_text()
    assert page.locator(".message.user").last.inner_text().startswith("我（校长）")
    cites = answer.locator(".text .cite")
    assert cites.count() >= 1

    cites.first.click()
    mark = page.locator("#source-text mark.quote")
    mark.wait_for()
    assert page.locator("#source").is_visible()
    assert "校车安全管理条例" in page.locator("#source-title").inner_text()
    quote = mark.inner_text()
    assert len(quote) > 5 and f"「{quote}」" in answer.inner_text()  # the highlighted span is the quoted sentence
    assert quote in page.locator("#source-text").inner_text()

    page.click("#source-full")
    page.locator("#source-full", has_text="只看本条").wait_for()
    assert page.locator("#source-text mark.quote").inner_text() == quote
    assert len(page.locator("#source-text").inner_text()) > 2000  # the whole law, not one article


def test_not_found_looks_different_and_lists_related_passages(page):
    ask(page, "今天晚饭吃什么好？")
    answer = page.locator(".message.assistant").last
    assert answer.get_attribute("data-grounded") == "false"
    assert "notfound" in answer.get_attribute("class")
    assert "现有政策文件中未找到依据" in answer.locator(".badge").inner_text()
    assert answer.locator(".text .cite").count() == 0
    related = answer.locator("button.related")
    assert related.count() >= 1
    related.first.click()
    page.locator("#source-text").wait_for()
    # A locator assertion waits without evaluating a string in the page (the page's CSP forbids that eval).
    expect(page.locator("#source-text")).to_have_text(re.compile(r"[\s\S]{21,}"))
    assert page.locator("#source-text mark").count() == 0  # related, not cited: nothing is highlighted


def test_follow_up_in_the_same_conversation(page):
    ask(page, "校长的安全职责是什么？")
    ask(page, "那班主任呢？")
    assert "作为班主任" in page.locator(".message.assistant").last.inner_text()


def test_upload_in_the_documents_panel_and_markup_stays_text(page, tmp_path):
    upload = tmp_path / "校园无人机巡检规定.md"
    upload.write_text(INJECTION, encoding="utf-8")
    page.click("#docs-toggle")
    page.locator("#docs-body tr").nth(22).wait_for()
    page.set_input_files("#upload-input", str(upload))
    page.click("#upload-button")
    page.locator("#docs-status", has_text="校园无人机巡检规定.md").wait_for()
    page.locator("#docs-body tr", has_text="校园无人机巡检规定.md").wait_for()
    assert page.locator("#docs-body tr", has_text="校园无人机巡检规定.md").count() == 1
    page.click("#docs-close")

    ask(page, "无人机巡检员每天要记录什么？")
    answer = page.locator(".message.assistant").last
    assert "<script>window.__pwned = 1</script>" in answer.inner_text()
    assert page.locator("#log script, #log img").count() == 0
    answer.locator(".text .cite").first.click()
    page.locator("#source-text mark.quote").wait_for()
    assert "<img src=x" in page.locator("#source-text").inner_text()
    assert page.locator("#source script, #source img").count() == 0
    assert page.evaluate("window.__pwned") is None


def test_conversation_survives_a_reload_until_a_new_chat(page):
    page.select_option("#role", "班主任")
    ask(page, "学生在校内受伤，班主任要做什么？")
    ask(page, "今天晚饭吃什么好？")
    before = [m.inner_text() for m in page.locator(".message").all()]
    session = page.evaluate("JSON.parse(sessionStorage.getItem('duty.conversation')).sessionId")
    assert session

    page.reload()
    page.locator(".message.assistant").nth(1).wait_for()
    assert [m.inner_text() for m in page.locator(".message").all()] == before
    assert page.locator(".welcome").count() == 0
    assert page.locator(".message.assistant").last.get_attribute("data-grounded") == "false"
    answer = page.locator(".message.assistant").first
    assert answer.get_attribute("data-grounded") == "true"
    answer.locator(".text .cite").first.click()  # the restored citations still open their source
    page.locator("#source-text mark.quote").wait_for()

    ask(page, "那校长呢？")  # the follow-up continues the same server session
    assert page.evaluate("JSON.parse(sessionStorage.getItem('duty.conversation')).sessionId") == session
    assert page.locator(".message.user").count() == 3

    page.click("#new-chat")
    page.reload()
    page.locator(".welcome").wait_for()
    assert page.locator(".message").count() == 0
