"""A real headless Chromium drives the admin on sale day and opens the API docs.

The browser and its page come from conftest.py. pytest-django's live server serves static files
itself from the app directories and answers /static/ before WhiteNoise, so the test uses unhashed
static URLs and works with or without collectstatic.
"""

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import MARKS, open_page
from tests.factories import PASSWORD
from tickets.models import Ticket

pytestmark = MARKS


@pytest.mark.django_db(transaction=True)
def test_staff_sells_a_ticket_from_the_admin_and_reads_the_api_docs(page, live_server, superuser, tmp_path):
    event_time = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)

    open_page(page, f"{live_server.url}/admin/")
    page.fill("#id_username", superuser.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#user-tools")).to_contain_text(superuser.username)

    open_page(page, f"{live_server.url}/admin/tickets/ticket/add/")
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

    open_page(page, f"{live_server.url}/api/docs/")
    expect(page.locator(".swagger-ui .opblock-summary-path", has_text="/api/v1/tickets/").first).to_be_visible()
    expect(page.locator(".swagger-ui .opblock-tag", has_text="tickets").first).to_be_visible()
    page.screenshot(path=tmp_path / "3-swagger.png", full_page=True)


@pytest.mark.django_db(transaction=True)
def test_the_landing_page_links_answer_and_the_docs_make_no_outside_request(page, live_server, tmp_path):
    open_page(page, f"{live_server.url}/")
    expect(page.locator("h1")).to_have_text("FastTicket")
    # /readyz is left to tests/ops/test_probes_under_gunicorn.py: its check's own database connection
    # would outlive the test database.
    expect(page.get_by_role("link", name="/readyz", exact=True)).to_have_attribute("href", "/readyz")
    for name in ("API root", "Swagger UI", "ReDoc", "OpenAPI document", "Admin", "/healthz"):
        href = page.get_by_role("link", name=name, exact=True).get_attribute("href")
        response = page.request.get(f"{live_server.url}{href}")
        assert response.status < 400, f"{name} ({href}) answered {response.status}"
    page.screenshot(path=tmp_path / "1-home.png", full_page=True)

    open_page(page, f"{live_server.url}/api/redoc/")
    expect(page.locator("#redoc-container h1").first).to_contain_text("FastTicket API")
    # The menu footer's logo (a CDN image in ReDoc's bundle) is inline now.
    expect(page.locator("img[alt='redocly logo']")).to_have_attribute("src", re.compile(r"^data:"))
    page.screenshot(path=tmp_path / "2-redoc.png", full_page=True)


@pytest.mark.django_db(transaction=True)
def test_swagger_authorize_offers_the_bearer_token_and_says_where_it_comes_from(page, live_server, tmp_path):
    open_page(page, f"{live_server.url}/api/docs/")
    page.locator(".swagger-ui button.authorize").first.click()

    dialog = page.locator(".swagger-ui .dialog-ux .modal-ux")
    expect(dialog).to_be_visible()
    schemes = dialog.locator(".auth-container")
    expect(schemes).to_have_count(1)
    expect(schemes.first).to_contain_text("jwtAuth")
    expect(schemes.first).to_contain_text("Bearer")
    expect(schemes.first).to_contain_text("POST /api/v1/auth/login/")
    page.screenshot(path=tmp_path / "swagger-authorize.png")
