"""Sale day in a real headless Chromium: the live page during a sale, pausing, cancelling, the list.

The test drives the sale itself: threads book over HTTP against the live server while a staff
member watches the live page, which shows exactly the refusals the booking path counted.
Screenshots go to the test's tmp_path (SALE_DAY_SCREENSHOTS=<folder> keeps them there).
"""

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.admin.models import LogEntry
from playwright.sync_api import expect

from reservations.models import Reservation, ReservationStatus
from reservations.refusals import refusals_per_second
from reservations.services import reservation_create
from tests.e2e.browser import MARKS, log_in, open_page, reserve
from tests.factories import access_token, make_ticket, make_user
from tickets.models import Ticket

pytestmark = [*MARKS, pytest.mark.django_db(transaction=True)]


class Sale(threading.Thread):
    """A crowd booking one ticket over HTTP from several threads, at a pace the eye can follow."""

    def __init__(self, live_server, ticket, tokens: list[str], *, threads: int = 4, pause: float = 0.7) -> None:
        super().__init__(daemon=True)
        self.live_server, self.ticket, self.tokens = live_server, ticket, tokens
        self.threads, self.pause = threads, pause
        self.answers: list[int] = []
        self.lock = threading.Lock()

    def _book(self, tokens: list[str]) -> None:
        for token in tokens:
            status, _ = reserve(self.live_server, self.ticket.id, token)
            with self.lock:
                self.answers.append(status)
            time.sleep(self.pause)

    def run(self) -> None:
        workers = [
            threading.Thread(target=self._book, args=(self.tokens[n :: self.threads],), daemon=True)
            for n in range(self.threads)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()


def _number(page, field: str) -> int:
    return int(page.locator(f'[data-field="{field}"]').first.inner_text().replace(",", ""))


def test_staff_watch_a_concurrent_sale_move_on_the_live_page(page, live_server, superuser, shots):
    ticket = make_ticket(title="Flash Sale Finale", quantity=40)
    tokens = [access_token(make_user()) for _ in range(56)]
    page.set_viewport_size({"width": 1440, "height": 1000})
    log_in(page, live_server, superuser)

    open_page(page, f"{live_server.url}/admin/tickets/ticket/{ticket.pk}/live/")
    expect(page.locator('[data-field="status"]')).to_have_text("On sale")
    expect(page.locator('[data-field="issued_count"]')).to_have_text("0")
    sale = Sale(live_server, ticket, tokens)
    sale.start()

    seen_sold, seen_seconds = set(), set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        seen_sold.add(_number(page, "issued_count"))
        seen_seconds.add(int(page.locator("#ft-chart").get_attribute("data-seconds")))
        if len(seen_sold) == 3:
            page.screenshot(path=shots / "live-1-mid-sale.png", full_page=True)
        if 40 in seen_sold and not sale.is_alive():
            break
        page.wait_for_timeout(500)
    sale.join(timeout=30)
    # The last poll after the crowd finished: every refusal is counted.
    page.wait_for_timeout(2500)

    assert sale.answers.count(201) == 40
    assert sale.answers.count(409) == 16
    assert len(seen_sold) >= 4, f"the sold count moved through {sorted(seen_sold)} only"
    assert max(seen_seconds) > min(seen_seconds), "the chart did not grow"
    expect(page.locator('[data-field="issued_count"]')).to_have_text("40")
    expect(page.locator('[data-field="remaining"]')).to_have_text("0")
    expect(page.locator('[data-field="percent"]')).to_have_text("100.0%")
    expect(page.locator('[data-field="status"]')).to_have_text("Sold out")
    now = int(time.time())
    counted = sum(
        sum(codes.values()) for codes in refusals_per_second(ticket_id=ticket.id, since=now - 299, until=now).values()
    )
    assert counted == 16
    expect(page.locator('[data-field="refused_total"]')).to_have_text(str(counted))
    expect(page.locator("#ft-chart")).to_have_attribute("data-booked", "40")
    expect(page.locator("#ft-chart canvas")).to_be_visible()
    expect(page.locator('[data-field="sold_out_at"]')).not_to_have_text("not sold out")
    expect(page.locator('[data-field="took"]')).to_contain_text("from the opening")
    expect(page.locator('[data-field="updated"]')).to_contain_text("live · updated")
    page.screenshot(path=shots / "live-2-sold-out.png", full_page=True)

    open_page(page, f"{live_server.url}/admin/tickets/ticket/live/")
    row = page.locator(f'#ft-overview tr[data-ticket="{ticket.pk}"]')
    expect(row.locator(".ft-sold")).to_have_text("40 / 40")
    expect(row.locator(".ft-state")).to_contain_text("Sold out")
    page.screenshot(path=shots / "overview.png", full_page=True)


def test_staff_pause_the_sale_from_the_live_page_and_bookings_get_sale_not_open(page, live_server, superuser, shots):
    ticket = make_ticket(title="Pause Me", quantity=10)
    alice, bob = make_user("alice"), make_user("bob")
    reservation_create(user=alice, ticket_id=ticket.id)
    page.set_viewport_size({"width": 1440, "height": 1000})
    log_in(page, live_server, superuser)
    live = f"{live_server.url}/admin/tickets/ticket/{ticket.pk}/live/"
    open_page(page, live)

    page.locator('[data-control="pause"] input[name=value]').fill("20")
    page.locator('[data-control="pause"] button').click()
    expect(page.locator("#control-confirmation")).to_contain_text("refused with sale_not_open")
    page.screenshot(path=shots / "pause-1-confirm.png", full_page=True)
    assert Ticket.objects.get(pk=ticket.pk).sale_starts_at is None
    page.click("input[name=confirm]")

    expect(page.locator(".messagelist")).to_contain_text("Paused the sale for 20 minutes.")
    expect(page.locator('[data-field="status"]')).to_have_text("Paused")
    expect(page.locator('[data-field="opened"]')).to_contain_text("reopens in 19 min")
    expect(page.locator(".ft-history-list")).to_contain_text("Paused the sale for 20 minutes: sale starts at none →")
    expect(page.locator('[data-control="resume"]')).to_be_visible()
    page.screenshot(path=shots / "pause-2-paused.png", full_page=True)
    status, body = reserve(live_server, ticket.id, access_token(bob))
    assert (status, body["code"]) == (409, "sale_not_open")
    paused_until = datetime.fromisoformat(body["sale_starts_at"].replace("Z", "+00:00"))
    assert timedelta(minutes=19) < paused_until - datetime.now(UTC) <= timedelta(minutes=20)

    page.locator('[data-control="resume"] button').click()
    page.click("input[name=confirm]")

    expect(page.locator('[data-field="status"]')).to_have_text("On sale")
    assert reserve(live_server, ticket.id, access_token(bob))[0] == 201
    entries = [entry.change_message for entry in LogEntry.objects.filter(object_id=str(ticket.pk))]
    assert any(message.startswith("Resumed the sale: sale starts at ") for message in entries)


def test_staff_cancel_a_reservation_through_the_confirmation_page_and_find_it_in_the_history(
    page, live_server, superuser, shots
):
    ticket = make_ticket(title="Opera Gala", quantity=5)
    alice, bob = make_user("alice"), make_user("bob")
    seat = reservation_create(user=alice, ticket_id=ticket.id)
    reservation_create(user=bob, ticket_id=ticket.id)
    page.set_viewport_size({"width": 1440, "height": 900})
    log_in(page, live_server, superuser)

    open_page(page, f"{live_server.url}/admin/reservations/reservation/")
    page.locator("#result_list tr", has_text="alice").locator("input.action-select").check()
    page.select_option("select[name=action]", "cancel_selected")
    page.click("button[name=index]")

    confirmation = page.locator("#to-cancel")
    expect(confirmation).to_contain_text("alice")
    expect(confirmation).to_contain_text("alice@example.com")
    expect(confirmation).to_contain_text(str(seat.pk))
    expect(confirmation).not_to_contain_text("bob")
    page.screenshot(path=shots / "cancel-1-confirm.png", full_page=True)
    assert Reservation.objects.get(pk=seat.pk).status == ReservationStatus.CONFIRMED
    page.click("input[type=submit].ft-danger")

    expect(page.locator(".messagelist .success")).to_contain_text("Cancelled 1 reservation(s): alice (Opera Gala)")
    assert Reservation.objects.get(pk=seat.pk).status == ReservationStatus.CANCELLED
    open_page(page, f"{live_server.url}/admin/reservations/reservation/{seat.pk}/history/")
    history = page.locator("#change-history")
    expect(history).to_contain_text(superuser.username)
    expect(history).to_contain_text("Cancelled for alice <alice@example.com>")
    page.screenshot(path=shots / "cancel-2-history.png", full_page=True)


def test_the_ticket_list_at_1366_px_shows_every_column(page, live_server, superuser, shots):
    now = datetime.now(UTC)
    make_ticket(title="New Year's Eve Gala at the Grand Philharmonic Hall", quantity=2_000)
    make_ticket(title="Late Night Jazz", quantity=150, sale_starts_at=now + timedelta(hours=3))
    sold = make_ticket(title="Sold Out Rock Night", quantity=1)
    reservation_create(user=make_user(), ticket_id=sold.id)
    page.set_viewport_size({"width": 1366, "height": 768})
    log_in(page, live_server, superuser)

    open_page(page, f"{live_server.url}/admin/tickets/ticket/")

    headers = page.locator("#result_list thead th")
    expect(headers).to_have_count(10)  # the checkbox, eight columns, the live link
    page.screenshot(path=shots / "list-1366.png", full_page=False)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow} px wider than the window"
    # The list scrolls inside its own box when too wide: every column must fit in that box.
    hidden = page.evaluate("(e => e.scrollWidth - e.clientWidth)(document.querySelector('#changelist .results'))")
    assert hidden <= 0, f"{hidden} px of the list are scrolled out of sight"
    visible = page.locator("#changelist .results").bounding_box()
    for index in range(headers.count()):
        box = headers.nth(index).bounding_box()
        assert box["x"] + box["width"] <= visible["x"] + visible["width"] + 1, headers.nth(index).inner_text()
    row = page.locator("#result_list tbody tr", has_text="Sold Out Rock Night")
    expect(row.locator("td.field-sale_status_display")).to_have_text("Sold out")
    expect(row.locator("td.field-percent_sold")).to_have_text("100.0%")
    # Times with seconds.
    assert page.locator("td.field-event_time").first.inner_text().count(":") == 2
