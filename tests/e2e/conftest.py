"""The browser tests' fixtures: a Chromium page that fails a test on any outside request, and a folder for screenshots.

Runs Debian's chromium (`apt-get install -y chromium`) through the `playwright` package; no browser
is downloaded. Without the package every test here is skipped.
"""

import os
from pathlib import Path

import pytest
from django.db import connections

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is not installed (pip install playwright)"
)

from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, leaves_the_machine  # noqa: E402

expect = playwright_api.expect


@pytest.fixture
def page(live_server, monkeypatch):
    """Yield a Chromium page with a bounded wait for every action; fail the test on any outside request.

    Outside requests are answered by nobody (aborted), so a test never depends on the network, and
    each one is reported at the end of the test.
    """
    # Playwright's sync API keeps an asyncio loop running in this thread; the test's own ORM calls
    # stay synchronous, and the live server answers from its own threads.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)
            expect.set_options(timeout=TIMEOUT_MS)
            outside: list[str] = []

            def guard(route) -> None:
                if leaves_the_machine(route.request.url):
                    outside.append(route.request.url)
                    route.abort()
                else:
                    route.continue_()

            page.route("**/*", guard)
            yield page
            assert outside == [], f"requests that leave the machine: {outside}"
        finally:
            browser.close()
            # Inside the loop Django keeps a separate connection per context: close it here, or it
            # stays open and stops the test database from being dropped.
            connections.close_all()


@pytest.fixture
def shots(tmp_path) -> Path:
    """Where a test saves its screenshots: its tmp_path, or SALE_DAY_SCREENSHOTS=<folder> to keep them."""
    folder = Path(os.environ.get("SALE_DAY_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
