"""A real headless Chromium drives the admin on sale day and opens the API docs.

Runs Debian's chromium (`apt-get install -y chromium`) through the `playwright` package; no browser
is downloaded. pytest-django's live server serves static files itself from the app directories and
answers /static/ before WhiteNoise, so the test uses unhashed static URLs and works with or without
collectstatic.
"""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.db import connections

from tests.factories import PASSWORD
from tickets.models import Ticket

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is not installed (pip install playwright)"
)
expect = playwright_api.expect

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 30_000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is missing (apt-get install -y chromium)"),
]


@pytest.fixture
def page(live_server, monkeypatch):
    """Yield a Chromium page with a bounded wait for every action."""
    # Playwright's sync API keeps an asyncio loop running in this thread; the test's own ORM calls
    # stay synchronous, and the live server answers from its own threads.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)
            expect.set_options(timeout=TIMEOUT_MS)
            yield page
        finally:
            browser.close()
            # Inside the loop Django keeps a separate connection per context: close it here, or it
            # stays open and stops the test database from being dropped.
            connections.close_all()


@pytest.fixture
def superuser(staff):
    staff.is_superuser = True
    staff.save(update_fields=["is_superuser"])
    return staff


def _open(page, url: str) -> None:
    response = page.goto(url)
    assert response is not None and response.ok, f"{url} answered {response and response.status}"


@pytest.mark.django_db(transaction=True)
def test_staff_sells_a_ticket_from_the_admin_and_reads_the_api_docs(page, live_server, superuser, tmp_path):
    event_time = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)

    _open(page, f"{live_server.url}/admin/")
    page.fill("#id_username", superuser.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#user-tools")).to_contain_text(superuser.username)

    _open(page, f"{live_server.url}/admin/tickets/ticket/add/")
    page.fill("#id_title", "Browser Gala")
    page.fill("#id_quantity", "42")
    page.fill("#id_event_time_0", event_time.strftime("%Y-%m-%d"))
    page.fill("#id_event_time_1", event_time.strftime("%H:%M:%S"))
    page.click("input[name=_save]")

    row = page.locator("#result_list tbody tr", has_text="Browser Gala")
    expect(row).to_have_count(1)
    expect(row.locator("td.field-remaining")).to_have_text("42")
    expect(row.locator("td.field-sale_status_display")).to_have_text("On sale")
    page.screenshot(path=tmp_path / "1-changelist.png", full_page=True)
    ticket = Ticket.objects.get(title="Browser Gala")
    assert (ticket.quantity, ticket.issued_count, ticket.event_time) == (42, 0, event_time)

    row.locator("th a").click()
    page.fill("#id_quantity", "0")
    page.click("input[name=_save]")

    expect(page.locator(".errornote")).to_be_visible()
    expect(page.locator(".field-quantity .errorlist")).to_contain_text("greater than or equal to 1")
    page.screenshot(path=tmp_path / "2-quantity-error.png", full_page=True)
    ticket.refresh_from_db()
    assert ticket.quantity == 42

    _open(page, f"{live_server.url}/api/docs/")
    expect(page.locator(".swagger-ui .opblock-summary-path", has_text="/api/v1/tickets/").first).to_be_visible()
    expect(page.locator(".swagger-ui .opblock-tag", has_text="tickets").first).to_be_visible()
    page.screenshot(path=tmp_path / "3-swagger.png", full_page=True)
