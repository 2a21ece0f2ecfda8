"""GET /api/v1/reservations/ (the caller's own) and GET /api/v1/tickets/{id}/reservations/ (staff)."""

import uuid

import pytest

from tests.factories import make_ticket
from tests.reservations.helpers import cancel, reserve

pytestmark = pytest.mark.django_db

MINE = "/api/v1/reservations/"


def _staff_list_url(ticket_id) -> str:
    return f"/api/v1/tickets/{ticket_id}/reservations/"


def _book(client, ticket) -> str:
    response = reserve(client, ticket.id)
    assert response.status_code == 201
    return response.json()["id"]


def test_list_shows_only_the_callers_reservations_newest_first(alice_api, bob_api):
    first, second = make_ticket(title="First"), make_ticket(title="Second")
    older = _book(alice_api, first)
    _book(bob_api, first)
    newer = _book(alice_api, second)

    response = alice_api.get(MINE)

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [r["id"] for r in body["results"]] == [newer, older]
    assert body["results"][0]["ticket"]["title"] == "Second"


def test_list_is_paginated(alice_api):
    ids = [_book(alice_api, make_ticket(title=f"T{n}")) for n in range(3)]

    first = alice_api.get(MINE, {"page_size": 2}).json()
    second = alice_api.get(MINE, {"page_size": 2, "page": 2}).json()

    assert set(first) == {"count", "next", "previous", "results"}
    assert first["count"] == 3
    assert first["next"] is not None
    assert first["previous"] is None
    assert [r["id"] for r in first["results"] + second["results"]] == ids[::-1]
    assert second["next"] is None


@pytest.mark.parametrize("status", ["confirmed", "cancelled"])
def test_list_filters_by_status(alice_api, status):
    kept = _book(alice_api, make_ticket(title="Kept"))
    dropped = _book(alice_api, make_ticket(title="Dropped"))
    cancel(alice_api, dropped)
    expected = kept if status == "confirmed" else dropped

    response = alice_api.get(MINE, {"status": status})

    assert response.status_code == 200
    assert [(r["id"], r["status"]) for r in response.json()["results"]] == [(expected, status)]


def test_list_with_an_invalid_status_answers_400(alice_api):
    _book(alice_api, make_ticket())

    response = alice_api.get(MINE, {"status": "pending"})

    assert response.status_code == 400
    assert "status" in response.json()


def test_anonymous_list_answers_401(api):
    response = api.get(MINE)

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_staff_list_shows_a_tickets_reservations_in_booking_order_with_users(staff_api, alice_api, bob_api, alice, bob):
    ticket = make_ticket(quantity=5)
    other = make_ticket(title="Other")
    bobs_first = _book(bob_api, ticket)
    alices = _book(alice_api, ticket)
    _book(alice_api, other)
    cancel(bob_api, bobs_first)
    bobs_second = _book(bob_api, ticket)

    response = staff_api.get(_staff_list_url(ticket.id))

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    rows = [(r["id"], r["status"], r["user"]) for r in body["results"]]
    bob_user = {"id": str(bob.id), "username": "bob"}
    alice_user = {"id": str(alice.id), "username": "alice"}
    assert rows == [
        (bobs_first, "cancelled", bob_user),
        (alices, "confirmed", alice_user),
        (bobs_second, "confirmed", bob_user),
    ]
    assert set(body["results"][0]) == {"id", "ticket", "status", "reserved_at", "cancelled_at", "user"}


def test_staff_list_answers_401_to_anonymous(api):
    response = api.get(_staff_list_url(make_ticket().id))

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_staff_list_answers_403_to_non_staff(alice_api):
    ticket = make_ticket()
    _book(alice_api, ticket)

    response = alice_api.get(_staff_list_url(ticket.id))

    assert response.status_code == 403
    assert set(response.json()) == {"detail"}


def test_staff_list_of_an_unknown_ticket_answers_404(staff_api):
    response = staff_api.get(_staff_list_url(uuid.uuid4()))

    assert response.status_code == 404
    assert set(response.json()) == {"detail"}


def test_a_reservation_answer_is_what_the_serializer_s_fields_render(alice):
    """Reservations render by hand for speed (every booking answer); the declared fields stay the truth."""
    from rest_framework import serializers

    from reservations.models import Reservation
    from reservations.serializers import ReservationSerializer, TicketReservationSerializer
    from reservations.services import reservation_create

    booked = reservation_create(user=alice, ticket_id=make_ticket().pk)
    stored = Reservation.objects.select_related("ticket", "user").get(pk=booked.pk)

    for serializer, instance in (
        (ReservationSerializer, booked),
        (ReservationSerializer, stored),
        (TicketReservationSerializer, stored),
    ):
        assert serializer(instance).data == serializers.Serializer.to_representation(serializer(), instance)
