"""Refusals decided by a booking's first statement, and the ticket's mirror in Redis.

A sold-out ticket answers 409 `sold_out` without a transaction or any lock, from the database
itself, so a seat that comes back (a cancel, more seats) is bookable as soon as its change
commits, whatever the mirror in Redis says (its write may be late or lost while Redis is slow).
"""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import make_ticket
from tests.reservations.helpers import cancel, issued, redis, reserve, seats
from tickets.models import Ticket
from tickets.sale_state import epoch_us, sale_key, sale_state_write

pytestmark = pytest.mark.django_db


def _sold_out(client, *, quantity: int = 1) -> tuple[Ticket, str]:
    ticket = make_ticket(quantity=quantity)
    response = reserve(client, ticket.id)
    assert response.status_code == 201
    return ticket, response.json()["id"]


def _took_the_row_lock(queries: CaptureQueriesContext) -> bool:
    return any("FOR UPDATE" in q["sql"].upper() for q in queries.captured_queries)


def _opened_a_transaction(queries: CaptureQueriesContext) -> bool:
    return any(q["sql"].upper().startswith(("BEGIN", "SAVEPOINT")) for q in queries.captured_queries)


def test_booking_the_last_seat_leaves_the_mirror_saying_sold_out(alice_api):
    ticket, _ = _sold_out(alice_api)

    mirror = redis().hgetall(sale_key(ticket.id))

    assert (int(mirror[b"q"]), int(mirror[b"i"])) == (1, 1)


def test_sold_out_ticket_answers_sold_out_without_a_transaction_or_the_row_lock(alice_api, bob_api):
    ticket, _ = _sold_out(alice_api)
    before = seats(ticket)

    with CaptureQueriesContext(connection) as queries:
        response = reserve(bob_api, ticket.id)

    assert (response.status_code, response.json()["code"]) == (409, "sold_out")
    assert not _took_the_row_lock(queries)
    assert not _opened_a_transaction(queries)
    assert seats(ticket) == before


def test_booking_a_free_seat_takes_the_row_lock(alice_api):
    ticket = make_ticket(quantity=2)

    with CaptureQueriesContext(connection) as queries:
        response = reserve(alice_api, ticket.id)

    assert response.status_code == 201
    assert _took_the_row_lock(queries)


def test_seat_holder_of_a_sold_out_ticket_still_hears_already_reserved(alice_api):
    ticket, reservation_id = _sold_out(alice_api)

    with CaptureQueriesContext(connection) as queries:
        response = reserve(alice_api, ticket.id)

    assert (response.status_code, response.json()["code"]) == (409, "already_reserved")
    assert response.json()["reservation"] == reservation_id
    assert not _took_the_row_lock(queries)


def test_a_cancelled_seat_is_bookable_as_soon_as_the_cancel_commits(
    alice_api, bob_api, django_capture_on_commit_callbacks
):
    ticket, reservation_id = _sold_out(alice_api)

    with django_capture_on_commit_callbacks(execute=True):
        assert cancel(alice_api, reservation_id).status_code == 200

    assert int(redis().hget(sale_key(ticket.id), "i")) == 0
    assert reserve(bob_api, ticket.id).status_code == 201


def test_a_free_seat_is_booked_even_while_the_mirror_wrongly_says_sold_out(alice_api, bob_api):
    """A cancel's mirror write may be lost (Redis slow); the seat it freed is bookable at once."""
    ticket, reservation_id = _sold_out(alice_api)
    # The cancel commits, but its mirror write never lands.
    assert cancel(alice_api, reservation_id).status_code == 200
    assert int(redis().hget(sale_key(ticket.id), "i")) == 1

    response = reserve(bob_api, ticket.id)

    assert response.status_code == 201, response.content
    assert issued(ticket) == 1


def test_staff_raising_the_quantity_makes_the_ticket_bookable_at_once(
    alice_api, bob_api, staff_api, django_capture_on_commit_callbacks
):
    ticket, _ = _sold_out(alice_api)

    with django_capture_on_commit_callbacks(execute=True):
        patched = staff_api.patch(f"/api/v1/tickets/{ticket.id}/", {"quantity": 2}, format="json")

    assert patched.status_code == 200
    assert reserve(bob_api, ticket.id).status_code == 201
    assert issued(ticket) == 2


def test_a_sold_out_ticket_whose_sale_is_paused_answers_sale_not_open_first(
    alice_api, bob_api, staff_api, django_capture_on_commit_callbacks
):
    ticket, _ = _sold_out(alice_api)
    starts = "2100-01-01T00:00:00Z"
    with django_capture_on_commit_callbacks(execute=True):
        patched = staff_api.patch(
            f"/api/v1/tickets/{ticket.id}/",
            {"event_time": "2100-06-01T00:00:00Z", "sale_starts_at": starts},
            format="json",
        )
    assert patched.status_code == 200

    with CaptureQueriesContext(connection) as queries:
        response = reserve(bob_api, ticket.id)

    assert (response.status_code, response.json()["code"]) == (409, "sale_not_open")
    assert response.json()["sale_starts_at"] == starts
    assert not _took_the_row_lock(queries)


def test_an_older_write_of_the_mirror_never_replaces_a_newer_one(alice_api):
    ticket, _ = _sold_out(alice_api)
    stale = Ticket.objects.get(pk=ticket.pk)
    stale.sale_version -= 1
    stale.issued_count = 0

    sale_state_write(ticket=stale)

    assert int(redis().hget(sale_key(ticket.id), "i")) == 1


def test_the_mirror_keeps_times_to_the_microsecond_even_in_the_year_9999():
    last = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    sale = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    ticket = Ticket(title="Far future", quantity=1, event_time=last, sale_starts_at=sale)

    sale_state_write(ticket=ticket)
    stored = redis().hgetall(sale_key(ticket.pk))

    assert int(stored[b"e"]) == epoch_us(last) == (last - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    assert int(stored[b"s"]) % 10**6 == 678901
