"""Headless Debian Chromium driven by Playwright, shared by the browser tests (never `playwright install`)."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    """A launched browser; fails (does not skip) when chromium is missing, since CI installs it."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is missing: apt-get install -y chromium (.ci/run installs it)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def open_page(browser, url: str, *, timeout_ms: int = 20_000, downloads: bool = False) -> Iterator[object]:
    """A fresh context and page at ``url`` (1280×860, zh-CN)."""
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="zh-CN", accept_downloads=downloads)
    try:
        page = context.new_page()
        page.set_default_timeout(timeout_ms)
        page.goto(url)
        yield page
    finally:
        context.close()
