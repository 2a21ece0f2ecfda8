"""The sold-out flag in Redis: a fast 409 that never takes a lock, never trusted for a 201."""

import time

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings

from tests.factories import make_ticket
from tests.reservations.helpers import cancel, issued, redis, reserve, seats, sold_out_flag_key
from tickets.availability import sold_out_flag_set
from tickets.models import Ticket

pytestmark = pytest.mark.django_db


@pytest.fixture
def commit_hooks(django_capture_on_commit_callbacks):
    """Run on_commit hooks (the flag's writes) inside the test's transaction."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def _sold_out(client, commit_hooks, *, quantity: int = 1) -> tuple[Ticket, str]:
    """Sell every seat of a new ticket to one client and let the flag be written."""
    ticket = make_ticket(quantity=quantity)
    with commit_hooks():
        response = reserve(client, ticket.id)
    assert response.status_code == 201
    return ticket, response.json()["id"]


def _flag_exists(ticket: Ticket) -> bool:
    return bool(redis().exists(sold_out_flag_key(ticket.id)))


def _took_the_row_lock(queries: CaptureQueriesContext) -> bool:
    sql = " ".join(q["sql"].upper() for q in queries.captured_queries)
    return "FOR UPDATE" in sql


def _touched_the_ticket(queries: CaptureQueriesContext) -> list[str]:
    """Return the statements that read the ticket row or opened a transaction."""
    markers = ('"TICKETS_TICKET"', "FOR UPDATE", "SAVEPOINT", "LOCK_TIMEOUT", "BEGIN")
    return [q["sql"] for q in queries.captured_queries if any(m in q["sql"].upper() for m in markers)]


def test_selling_the_last_seat_sets_the_flag_with_a_ttl_of_a_few_seconds(alice_api, commit_hooks):
    ticket, _ = _sold_out(alice_api, commit_hooks)

    assert _flag_exists(ticket)
    assert 0 < redis().ttl(sold_out_flag_key(ticket.id)) <= settings.SOLD_OUT_FLAG_TTL <= 60


def test_selling_a_seat_that_is_not_the_last_sets_no_flag(alice_api, commit_hooks):
    ticket = make_ticket(quantity=2)

    with commit_hooks():
        reserve(alice_api, ticket.id)

    assert not _flag_exists(ticket)


def test_flagged_ticket_answers_sold_out_without_touching_the_ticket_row(alice_api, bob_api, commit_hooks):
    ticket, _ = _sold_out(alice_api, commit_hooks)
    before = seats(ticket)

    with CaptureQueriesContext(connection) as queries:
        response = reserve(bob_api, ticket.id)

    assert (response.status_code, response.json()["code"]) == (409, "sold_out")
    assert _touched_the_ticket(queries) == []
    assert seats(ticket) == before


def test_sold_out_ticket_without_a_flag_is_refused_under_the_row_lock_and_flagged(alice_api, bob_api, commit_hooks):
    ticket, _ = _sold_out(alice_api, commit_hooks)
    redis().delete(sold_out_flag_key(ticket.id))

    with CaptureQueriesContext(connection) as queries, commit_hooks():
        response = reserve(bob_api, ticket.id)

    assert (response.status_code, response.json()["code"]) == (409, "sold_out")
    assert _took_the_row_lock(queries)
    assert _touched_the_ticket(queries) != []
    assert _flag_exists(ticket)


def test_booking_without_a_flag_takes_the_row_lock(alice_api):
    ticket = make_ticket(quantity=2)

    with CaptureQueriesContext(connection) as queries:
        response = reserve(alice_api, ticket.id)

    assert response.status_code == 201
    assert _took_the_row_lock(queries)


def test_seat_holder_of_a_flagged_ticket_still_hears_already_reserved(alice_api, commit_hooks):
    ticket, reservation_id = _sold_out(alice_api, commit_hooks)

    with CaptureQueriesContext(connection) as queries:
        response = reserve(alice_api, ticket.id)

    assert response.status_code == 409
    assert response.json()["code"] == "already_reserved"
    assert response.json()["reservation"] == reservation_id
    assert not _took_the_row_lock(queries)


def test_cancel_removes_the_flag_and_booking_works_again(alice_api, bob_api, commit_hooks):
    ticket, reservation_id = _sold_out(alice_api, commit_hooks)

    with commit_hooks():
        assert cancel(alice_api, reservation_id).status_code == 200

    assert not _flag_exists(ticket)
    assert reserve(bob_api, ticket.id).status_code == 201


def test_staff_raising_quantity_removes_the_flag_and_booking_works_again(alice_api, bob_api, staff_api, commit_hooks):
    ticket, _ = _sold_out(alice_api, commit_hooks)

    with commit_hooks():
        patched = staff_api.patch(f"/api/v1/tickets/{ticket.id}/", {"quantity": 2}, format="json")

    assert patched.status_code == 200
    assert not _flag_exists(ticket)
    assert reserve(bob_api, ticket.id).status_code == 201
    assert issued(ticket) == 2


def test_stale_flag_on_a_ticket_with_free_seats_refuses_only_until_it_expires(alice_api):
    ticket = make_ticket(quantity=5)
    with override_settings(SOLD_OUT_FLAG_TTL=1):
        sold_out_flag_set(ticket=ticket)

    refused = reserve(alice_api, ticket.id)
    deadline = time.monotonic() + 30
    while _flag_exists(ticket) and time.monotonic() < deadline:
        time.sleep(0.1)
    booked = reserve(alice_api, ticket.id)

    assert (refused.status_code, refused.json()["code"]) == (409, "sold_out")
    assert booked.status_code == 201
    assert issued(ticket) == 1


def test_flag_answers_sale_not_open_first_when_the_sale_is_paused(alice_api, bob_api, commit_hooks):
    ticket, _ = _sold_out(alice_api, commit_hooks)
    starts = "2100-01-01T00:00:00Z"
    Ticket.objects.filter(pk=ticket.pk).update(event_time="2100-06-01T00:00:00Z", sale_starts_at=starts)
    sold_out_flag_set(ticket=Ticket.objects.get(pk=ticket.pk))

    with CaptureQueriesContext(connection) as queries:
        response = reserve(bob_api, ticket.id)

    assert response.status_code == 409
    assert response.json()["code"] == "sale_not_open"
    assert response.json()["sale_starts_at"] == starts
    assert not _took_the_row_lock(queries)


def test_sold_out_flag_keeps_times_exactly_even_at_the_end_of_year_9999():
    from datetime import UTC, datetime

    from tickets.availability import sold_out_flag_get, sold_out_flag_set
    from tickets.models import Ticket

    last = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    sale = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    ticket = Ticket(title="Far future", quantity=1, event_time=last, sale_starts_at=sale)

    sold_out_flag_set(ticket=ticket)
    flag = sold_out_flag_get(ticket_id=ticket.pk)

    assert flag.event_time == last
    assert flag.sale_starts_at == sale
