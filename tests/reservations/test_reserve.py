"""POST /api/v1/tickets/{id}/reserve/: the 201, the refusals and their order."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from reservations.models import IdempotencyRecord, Reservation, ReservationStatus
from tests.factories import make_ticket
from tests.reservations.helpers import cancel, issued, parse_time, reserve, reserve_url, seats
from tickets.models import Ticket

pytestmark = pytest.mark.django_db


def test_reserve_answers_201_with_a_confirmed_reservation(alice_api, alice):
    ticket = make_ticket(title="Zoë — Live", quantity=3)
    before = timezone.now()

    response = reserve(alice_api, ticket.id)

    after = timezone.now()
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"id", "ticket", "status", "reserved_at", "cancelled_at"}
    assert body["ticket"] == {
        "id": str(ticket.id),
        "title": "Zoë — Live",
        "event_time": body["ticket"]["event_time"],
    }
    assert parse_time(body["ticket"]["event_time"]) == ticket.event_time
    assert body["status"] == "confirmed"
    assert body["cancelled_at"] is None
    assert before <= parse_time(body["reserved_at"]) <= after
    stored = Reservation.objects.get(pk=body["id"])
    assert (stored.user, stored.ticket_id, stored.status) == (alice, ticket.id, ReservationStatus.CONFIRMED)


def test_reserve_adds_one_to_issued_count(alice_api, bob_api):
    ticket = make_ticket(quantity=3)

    reserve(alice_api, ticket.id)
    reserve(bob_api, ticket.id)

    assert issued(ticket) == 2
    shown = alice_api.get(f"/api/v1/tickets/{ticket.id}/").json()
    assert (shown["issued_count"], shown["remaining"], shown["sold_out"]) == (2, 1, False)


def test_anonymous_reserve_answers_401_not_authenticated(api):
    ticket = make_ticket()

    response = reserve(api, ticket.id)

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert "detail" in response.json()
    assert issued(ticket) == 0


def test_reserve_with_an_invalid_token_answers_401(api):
    ticket = make_ticket()
    api.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")

    response = reserve(api, ticket.id)

    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"


def test_reserve_of_an_unknown_ticket_answers_404(alice_api):
    response = reserve(alice_api, uuid.uuid4())

    assert response.status_code == 404
    assert set(response.json()) == {"detail"}
    assert Reservation.objects.count() == 0


def test_reserve_of_a_malformed_ticket_id_answers_404_json(alice_api):
    response = alice_api.post(reserve_url("not-a-uuid"))

    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert set(response.json()) == {"detail"}


def test_reserve_with_fields_in_the_body_answers_400_and_stores_nothing(alice_api):
    ticket = make_ticket()

    response = alice_api.post(reserve_url(ticket.id), {"seats": 2}, format="json", HTTP_IDEMPOTENCY_KEY="k-body")

    assert response.status_code == 400
    assert "seats" in response.json()
    assert seats(ticket) == (0, [])
    assert IdempotencyRecord.objects.count() == 0


def test_reserve_with_a_malformed_json_body_answers_400(alice_api):
    ticket = make_ticket()

    response = alice_api.post(reserve_url(ticket.id), "{not json", content_type="application/json")

    assert response.status_code == 400
    assert "detail" in response.json()
    assert seats(ticket) == (0, [])


# Each 409 -----------------------------------------------------------------------------------------


def test_sold_out_ticket_answers_409_sold_out(alice_api, bob_api):
    ticket = make_ticket(quantity=1)
    reserve(alice_api, ticket.id)
    before = seats(ticket)

    response = reserve(bob_api, ticket.id)

    assert response.status_code == 409
    assert response.json() == {"code": "sold_out", "detail": response.json()["detail"]}
    assert response.json()["detail"]
    assert seats(ticket) == before


def test_second_booking_by_the_same_user_answers_409_already_reserved_with_its_id(alice_api):
    ticket = make_ticket(quantity=5)
    first = reserve(alice_api, ticket.id).json()
    before = seats(ticket)

    response = reserve(alice_api, ticket.id)

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "already_reserved"
    assert body["reservation"] == first["id"]
    assert set(body) == {"code", "detail", "reservation"}
    assert seats(ticket) == before


def test_booking_before_the_sale_opens_answers_409_sale_not_open_with_its_start(alice_api):
    starts = timezone.now() + timedelta(days=1, microseconds=123456)
    ticket = make_ticket(sale_starts_at=starts)

    response = reserve(alice_api, ticket.id)

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "sale_not_open"
    assert set(body) == {"code", "detail", "sale_starts_at"}
    assert parse_time(body["sale_starts_at"]) == starts
    assert body["sale_starts_at"] == alice_api.get(f"/api/v1/tickets/{ticket.id}/").json()["sale_starts_at"]
    assert seats(ticket) == (0, [])


def test_booking_once_the_sale_opened_answers_201(alice_api):
    ticket = make_ticket(sale_starts_at=timezone.now() - timedelta(minutes=1))

    assert reserve(alice_api, ticket.id).status_code == 201


def test_booking_after_the_event_started_answers_409_sale_closed(alice_api):
    ticket = make_ticket(event_time=timezone.now() - timedelta(minutes=1))

    response = reserve(alice_api, ticket.id)

    assert response.status_code == 409
    assert response.json()["code"] == "sale_closed"
    assert set(response.json()) == {"code", "detail"}
    assert seats(ticket) == (0, [])


# The order when several apply: sale_not_open, sale_closed, already_reserved, sold_out -----------


def _sold_out_to_alice(alice_api) -> tuple[Ticket, str]:
    ticket = make_ticket(quantity=1)
    reservation_id = reserve(alice_api, ticket.id).json()["id"]
    return ticket, reservation_id


def test_sale_not_open_wins_over_already_reserved_and_sold_out(alice_api, bob_api):
    ticket, _ = _sold_out_to_alice(alice_api)
    # Staff may move the sale start into the future after seats were sold: that pauses the sale.
    Ticket.objects.filter(pk=ticket.pk).update(sale_starts_at=timezone.now() + timedelta(hours=1))
    before = seats(ticket)

    holder = reserve(alice_api, ticket.id)
    other = reserve(bob_api, ticket.id)

    assert (holder.status_code, holder.json()["code"]) == (409, "sale_not_open")
    assert (other.status_code, other.json()["code"]) == (409, "sale_not_open")
    assert seats(ticket) == before


def test_sale_closed_wins_over_already_reserved_and_sold_out(alice_api, bob_api):
    ticket, _ = _sold_out_to_alice(alice_api)
    Ticket.objects.filter(pk=ticket.pk).update(event_time=timezone.now() - timedelta(minutes=1))
    before = seats(ticket)

    holder = reserve(alice_api, ticket.id)
    other = reserve(bob_api, ticket.id)

    assert (holder.status_code, holder.json()["code"]) == (409, "sale_closed")
    assert (other.status_code, other.json()["code"]) == (409, "sale_closed")
    assert seats(ticket) == before


def test_seat_holder_of_a_sold_out_ticket_hears_already_reserved_with_their_id(alice_api, bob_api):
    ticket, reservation_id = _sold_out_to_alice(alice_api)

    holder = reserve(alice_api, ticket.id)
    other = reserve(bob_api, ticket.id)

    assert holder.status_code == 409
    assert holder.json()["code"] == "already_reserved"
    assert holder.json()["reservation"] == reservation_id
    assert (other.status_code, other.json()["code"]) == (409, "sold_out")


# Booking again after a cancel ----------------------------------------------------------------------


def test_user_who_cancelled_may_book_again_while_seats_remain(alice_api, alice):
    ticket = make_ticket(quantity=1)
    first = reserve(alice_api, ticket.id).json()
    cancel(alice_api, first["id"])

    response = reserve(alice_api, ticket.id)

    assert response.status_code == 201
    assert response.json()["id"] != first["id"]
    assert issued(ticket) == 1
    statuses = sorted(Reservation.objects.filter(user=alice, ticket=ticket).values_list("status", flat=True))
    assert statuses == ["cancelled", "confirmed"]


def test_user_who_cancelled_hears_sold_out_when_no_seat_remains(alice_api, bob_api):
    ticket = make_ticket(quantity=1)
    first = reserve(alice_api, ticket.id).json()
    cancel(alice_api, first["id"])
    assert reserve(bob_api, ticket.id).status_code == 201
    before = seats(ticket)

    response = reserve(alice_api, ticket.id)

    assert (response.status_code, response.json()["code"]) == (409, "sold_out")
    assert seats(ticket) == before


def test_a_test_transaction_around_a_booking_outlives_the_booking_s_idle_cut_off(alice_api, bob_api):
    """A batch cuts off a frozen holder (idle_in_transaction_session_timeout) only in its own transaction."""
    import time

    first = reserve(alice_api, make_ticket().id)
    time.sleep(0.7)  # longer than reservations.batch.IDLE_IN_TRANSACTION_MS, inside this test's transaction
    second = reserve(bob_api, make_ticket().id)

    assert (first.status_code, second.status_code) == (201, 201), second.content
