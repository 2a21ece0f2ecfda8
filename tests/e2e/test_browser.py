"""A real headless Chromium drives the admin on sale day and opens the API docs.

Runs Debian's chromium (`apt-get install -y chromium`) through the `playwright` package; no browser
is downloaded. pytest-django's live server serves static files itself from the app directories and
answers /static/ before WhiteNoise, so the test uses unhashed static URLs and works with or without
collectstatic.
"""

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

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
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is missing (apt-get install -y chromium)"),
]


def _leaves_the_machine(url: str) -> bool:
    """Tell whether a request goes anywhere but this machine (data: and blob: URLs go nowhere)."""
    parts = urlsplit(url)
    return parts.scheme not in ("data", "blob", "about") and parts.hostname not in LOCAL_HOSTS


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
                if _leaves_the_machine(route.request.url):
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
    expect(row.locator("td.field-remaining_shown")).to_have_text("42")
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


@pytest.mark.django_db(transaction=True)
def test_the_landing_page_links_answer_and_the_docs_make_no_outside_request(page, live_server, tmp_path):
    _open(page, f"{live_server.url}/")
    expect(page.locator("h1")).to_have_text("FastTicket")
    # /readyz is left to tests/ops/test_probes_under_gunicorn.py: its check's own database connection
    # would outlive the test database.
    expect(page.get_by_role("link", name="/readyz", exact=True)).to_have_attribute("href", "/readyz")
    for name in ("API root", "Swagger UI", "ReDoc", "OpenAPI document", "Admin", "/healthz"):
        href = page.get_by_role("link", name=name, exact=True).get_attribute("href")
        response = page.request.get(f"{live_server.url}{href}")
        assert response.status < 400, f"{name} ({href}) answered {response.status}"
    page.screenshot(path=tmp_path / "1-home.png", full_page=True)

    _open(page, f"{live_server.url}/api/redoc/")
    expect(page.locator("#redoc-container h1").first).to_contain_text("FastTicket API")
    # The menu footer's logo (a CDN image in ReDoc's bundle) is inline now.
    expect(page.locator("img[alt='redocly logo']")).to_have_attribute("src", re.compile(r"^data:"))
    page.screenshot(path=tmp_path / "2-redoc.png", full_page=True)


@pytest.mark.django_db(transaction=True)
def test_swagger_authorize_offers_the_bearer_token_and_says_where_it_comes_from(page, live_server, tmp_path):
    _open(page, f"{live_server.url}/api/docs/")
    page.locator(".swagger-ui button.authorize").first.click()

    dialog = page.locator(".swagger-ui .dialog-ux .modal-ux")
    expect(dialog).to_be_visible()
    schemes = dialog.locator(".auth-container")
    expect(schemes).to_have_count(1)
    expect(schemes.first).to_contain_text("jwtAuth")
    expect(schemes.first).to_contain_text("Bearer")
    expect(schemes.first).to_contain_text("POST /api/v1/auth/login/")
    page.screenshot(path=tmp_path / "swagger-authorize.png")
