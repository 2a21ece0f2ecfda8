"""Sale day of a ticket with a waiting room, in a real headless Chromium on a 1366 px laptop screen.

Users join the queue and book over HTTP against the live server; the live page draws the waiting
room's counts from the sales API it polls. Screenshots go to the test's tmp_path
(SALE_DAY_SCREENSHOTS=<folder> keeps them there).
"""

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import MARKS, log_in, open_page, post_as, reserve
from tests.factories import access_token, make_user
from tests.reservations.helpers import redis_unreachable
from tests.reservations.waiting_room import room_ticket
from tickets.models import Ticket

pytestmark = [*MARKS, pytest.mark.django_db(transaction=True)]

LAPTOP = {"width": 1366, "height": 768}


def _join(live_server, ticket_id, token: str) -> tuple[int, dict]:
    return post_as(live_server, f"/api/v1/tickets/{ticket_id}/queue/", token)


def _overflow(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def test_the_live_page_of_a_waiting_room_ticket_shows_its_counts_at_1366_px(page, live_server, superuser, shots):
    ticket = room_ticket(title="Midnight Premiere", quantity=3, admit_per_minute=6000, admission_seconds=45)
    tokens = [access_token(make_user()) for _ in range(6)]
    first, place = _join(live_server, ticket.pk, tokens[0])
    assert (first, place["status"]) == (201, "admitted")
    for token in tokens[1:]:
        assert _join(live_server, ticket.pk, token)[0] == 201
    assert reserve(live_server, ticket.pk, tokens[0])[0] == 201
    page.set_viewport_size(LAPTOP)
    log_in(page, live_server, superuser)

    open_page(page, f"{live_server.url}/admin/tickets/ticket/{ticket.pk}/live/")

    # Admissions come at the room's pace; the page shows what the polled sales API says.
    for name, count in {"waiting": "3", "admitted": "2", "booked": "1", "expired": "0"}.items():
        expect(page.locator(f'[data-field="queue_{name}"]')).to_have_text(count)
    expect(page.locator('[aria-label="Waiting room"]')).to_contain_text("Admits 6,000 a minute, each for 45 s.")
    expect(page.locator('[data-control="waiting_room_off"]')).to_be_visible()
    expect(page.locator('[data-field="issued_count"]')).to_have_text("1")
    assert _overflow(page) <= 0, f"the live page is {_overflow(page)} px wider than the window"
    page.screenshot(path=shots / "live-waiting-room-1366.png", full_page=True)

    page.locator('[data-control="admit_per_minute"] input[name=value]').fill("1200")
    page.locator('[data-control="admit_per_minute"] button').click()
    says = "admits 1,200 places a minute from now on, instead of 6,000."
    expect(page.locator("#control-confirmation")).to_contain_text(says)
    assert _overflow(page) <= 0
    page.screenshot(path=shots / "admit-1-confirm-1366.png", full_page=True)
    assert Ticket.objects.get(pk=ticket.pk).admit_per_minute == 6000
    page.click("input[name=confirm]")
    expect(page.locator('[aria-label="Waiting room"]')).to_contain_text("Admits 1,200 a minute")

    open_page(page, f"{live_server.url}/admin/tickets/ticket/live/")
    expect(page.locator(f'#ft-overview tr[data-ticket="{ticket.pk}"] .ft-sold')).to_have_text("1 / 3")
    assert _overflow(page) <= 0, f"the overview is {_overflow(page)} px wider than the window"
    table, card = page.locator("#ft-overview").bounding_box(), page.locator(".ft-live .ft-card").bounding_box()
    assert table["x"] + table["width"] <= card["x"] + card["width"], "the overview's table overflows its card"
    page.screenshot(path=shots / "overview-1366.png", full_page=True)


def test_the_live_page_says_the_counts_are_not_known_while_redis_is_unreachable(page, live_server, superuser, shots):
    ticket = room_ticket(title="Blackout Gala", quantity=5)
    token = access_token(make_user())
    assert _join(live_server, ticket.pk, token)[0] == 201
    assert reserve(live_server, ticket.pk, token)[0] == 201
    page.set_viewport_size(LAPTOP)
    log_in(page, live_server, superuser)

    with redis_unreachable():
        open_page(page, f"{live_server.url}/admin/tickets/ticket/{ticket.pk}/live/")

        # The sales API says null for the queue and the refusals: the page shows no number for them.
        for name in ("waiting", "admitted", "booked", "expired"):
            expect(page.locator(f'[data-field="queue_{name}"]')).to_have_text("?")
        expect(page.locator('[data-field="refused_total"]')).to_have_text("?")
        expect(page.locator('[data-field="refused_note"]')).to_have_text("not counted while Redis is unreachable")
        expect(page.locator('[data-field="issued_count"]')).to_have_text("1")
        page.screenshot(path=shots / "live-redis-down-1366.png", full_page=True)
