"""A drafting request typed into the web chat shows a draft card with clickable citations and 「下载 Word」."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from docx import Document

from tests.browser import chromium, open_page

pytestmark = pytest.mark.browser

FACTS = ["对崔村幼儿园园舍的房顶、围墙进行了加固", "为各单位增设了监控头，并将监控联网"]
HOSTILE = "<img src=x onerror=\"window.__pwned = 1\"><b>标签</b>原样显示"


@pytest.fixture
def page(live_server) -> Iterator[object]:
    with chromium() as browser, open_page(browser, live_server.url + "/", timeout_ms=30_000, downloads=True) as page:
        yield page


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
