"""The 「撰写述职报告」 panel of the web page in headless Chromium (Debian ``chromium``)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from docx import Document
from playwright.sync_api import expect

from tests.browser import chromium, open_page
from tests.test_draft import FACTS_BY_SECTION, FACTS_FILE, HEADINGS

pytestmark = pytest.mark.browser



@pytest.fixture(scope="module")
def server_url(laws_kb_dir) -> Iterator[str]:
    """The real app (plus this router, until create_app includes it) served by uvicorn on a free port."""
    import uvicorn

    from api.app import create_app
    from api.routes import draft as draft_route
    from assistant.config import Settings

    app = create_app(Settings(kb=laws_kb_dir, embedder="fake", _env_file=None))
    if not any(getattr(route, "path", "") == "/v1/draft" for route in app.routes):
        app.include_router(draft_route.router)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def page(server_url):
    with chromium() as browser, open_page(browser, server_url + "/", downloads=True) as page:
        yield page


def test_draft_panel_shows_the_cited_draft_escaped_and_downloads_word(page, tmp_path):
    page.select_option("#role", "校长")
    page.click("#draft-open")
    page.fill("#draft-unit", "某某镇中心校<img src=x onerror=\"window.__pwned = 1\">")
    page.fill("#draft-year", "2026")
    page.fill("#draft-facts", FACTS_FILE.read_text(encoding="utf-8") + "\n<b>标签</b>原样显示")
    page.click("#draft-submit")
    page.wait_for_selector("#draft-result h4")
    result = page.inner_text("#draft-result")
    assert [h.inner_text() for h in page.locator("#draft-result h4").all()] == HEADINGS
    assert all(fact in result for facts in FACTS_BY_SECTION.values() for fact in facts)
    assert "<b>标签</b>原样显示" in result and page.locator("#draft-result b, #draft-result img").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#draft-result .citations li").count() >= 4

    with page.expect_download() as download:
        page.click("#draft-download")
    saved = tmp_path / "report.docx"
    download.value.save_as(saved)
    assert download.value.suggested_filename.endswith("2026年度述职报告.docx")
    assert "一、履职基本情况" in [p.text for p in Document(saved).paragraphs]

    page.locator("#draft-result .citations button").first.click()  # opens the quoted article beside the chat
    page.wait_for_selector("#source:not([hidden])")
    # the panel shows before the article's text arrives: wait for the highlighted quote (a locator assertion,
    # since the page's CSP forbids evaluating a string)
    expect(page.locator("#source-text mark.quote")).to_have_count(1)
