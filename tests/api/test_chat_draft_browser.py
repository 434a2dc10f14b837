"""A drafting request typed into the web chat shows a draft card with clickable citations and 「下载 Word」."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from docx import Document

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
FACTS = ["对崔村幼儿园园舍的房顶、围墙进行了加固", "为各单位增设了监控头，并将监控联网"]
HOSTILE = "<img src=x onerror=\"window.__pwned = 1\"><b>标签</b>原样显示"


@pytest.fixture
def page(live_server) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is missing: apt-get install -y chromium (.ci/run installs it)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="zh-CN", accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(live_server.url + "/")
        yield page
        browser.close()


def test_a_drafting_request_in_the_chat_shows_a_draft_card_and_downloads_word(page, tmp_path):
    page.select_option("#role", "校长")
    page.fill("#question", "帮我写2026年述职报告：\n" + "\n".join(FACTS) + "\n" + HOSTILE)
    page.click("#send")
    card = page.locator(".message.draft-card")
    card.wait_for()
    headings = [h.inner_text() for h in card.locator("h4").all()]
    assert headings == ["一、履职基本情况", "二、主要工作与成效", "三、存在的问题与不足", "四、下一步工作打算"]
    text = card.inner_text()
    assert all(fact in text for fact in FACTS) and "<b>标签</b>原样显示" in text
    assert card.locator("b, img, script").count() == 0 and page.evaluate("window.__pwned") is None
    assert card.locator(".text .cite").count() >= 1

    card.locator(".text .cite").first.click()
    page.wait_for_selector("#source-text mark.quote")
    assert page.inner_text("#source-text mark.quote").strip()

    button = card.locator("button.draft-download")
    assert button.inner_text() == "下载 Word"
    with page.expect_download() as info:
        button.click()
    saved = tmp_path / "draft.docx"
    info.value.save_as(saved)
    assert info.value.suggested_filename.endswith(".docx")
    body = "\n".join(p.text for p in Document(saved).paragraphs)
    assert all(fact in body for fact in FACTS)
