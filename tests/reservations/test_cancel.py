"""POST /api/v1/reservations/{id}/cancel/ and GET /api/v1/reservations/{id}/."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from reservations.models import Reservation, ReservationStatus
from tests.factories import make_ticket
from tests.reservations.helpers import cancel, issued, parse_time, reserve, seats
from tickets.models import Ticket

pytestmark = pytest.mark.django_db


def _booked(client, **ticket_fields) -> tuple[Ticket, dict]:
    ticket = make_ticket(**ticket_fields)
    response = reserve(client, ticket.id)
    assert response.status_code == 201
    return ticket, response.json()


def _start_event(ticket: Ticket) -> None:
    Ticket.objects.filter(pk=ticket.pk).update(event_time=timezone.now() - timedelta(minutes=1))


def test_cancel_answers_200_with_the_reservation_cancelled(alice_api):
    _, booked = _booked(alice_api, quantity=3)
    before = timezone.now()

    response = cancel(alice_api, booked["id"])

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"id", "ticket", "status", "reserved_at", "cancelled_at"}
    assert body["id"] == booked["id"]
    assert body["ticket"] == booked["ticket"]
    assert body["reserved_at"] == booked["reserved_at"]
    assert body["status"] == "cancelled"
    assert before <= parse_time(body["cancelled_at"]) <= timezone.now()
    stored = Reservation.objects.get(pk=booked["id"])
    assert stored.status == ReservationStatus.CANCELLED
    assert stored.cancelled_at == parse_time(body["cancelled_at"])


def test_cancel_returns_the_seat_to_stock(alice_api, bob_api):
    ticket, booked = _booked(alice_api, quantity=1)
    assert reserve(bob_api, ticket.id).json()["code"] == "sold_out"

    cancel(alice_api, booked["id"])

    assert issued(ticket) == 0
    assert reserve(bob_api, ticket.id).status_code == 201


def test_second_cancel_answers_409_already_cancelled(alice_api):
    ticket, booked = _booked(alice_api)
    cancel(alice_api, booked["id"])
    before = seats(ticket)

    response = cancel(alice_api, booked["id"])

    assert response.status_code == 409
    assert response.json() == {"code": "already_cancelled", "detail": response.json()["detail"]}
    assert seats(ticket) == before


def test_cancel_after_the_event_started_answers_409_sale_closed(alice_api):
    ticket, booked = _booked(alice_api)
    _start_event(ticket)
    before = seats(ticket)

    response = cancel(alice_api, booked["id"])

    assert response.status_code == 409
    assert response.json()["code"] == "sale_closed"
    assert seats(ticket) == before
    assert Reservation.objects.get(pk=booked["id"]).status == ReservationStatus.CONFIRMED


def test_already_cancelled_wins_over_sale_closed(alice_api):
    ticket, booked = _booked(alice_api)
    cancel(alice_api, booked["id"])
    _start_event(ticket)

    response = cancel(alice_api, booked["id"])

    assert (response.status_code, response.json()["code"]) == (409, "already_cancelled")


def test_cancel_of_another_users_reservation_answers_404(alice_api, bob_api):
    ticket, booked = _booked(alice_api)
    before = seats(ticket)

    response = cancel(bob_api, booked["id"])

    assert response.status_code == 404
    assert set(response.json()) == {"detail"}
    assert seats(ticket) == before


def test_detail_of_another_users_reservation_answers_404(alice_api, bob_api):
    _, booked = _booked(alice_api)

    response = bob_api.get(f"/api/v1/reservations/{booked['id']}/")

    assert response.status_code == 404
    assert set(response.json()) == {"detail"}


def test_detail_of_own_reservation_answers_200_as_booked(alice_api):
    _, booked = _booked(alice_api)

    response = alice_api.get(f"/api/v1/reservations/{booked['id']}/")

    assert response.status_code == 200
    assert response.json() == booked


@pytest.mark.parametrize("path", ["/api/v1/reservations/{id}/cancel/", "/api/v1/reservations/{id}/"])
def test_unknown_reservation_answers_404(alice_api, path):
    url = path.format(id=uuid.uuid4())

    response = alice_api.post(url) if url.endswith("cancel/") else alice_api.get(url)

    assert response.status_code == 404
    assert set(response.json()) == {"detail"}


@pytest.mark.parametrize("path", ["/api/v1/reservations/not-a-uuid/cancel/", "/api/v1/reservations/not-a-uuid/"])
def test_malformed_reservation_id_answers_404_json(alice_api, path):
    response = alice_api.post(path) if path.endswith("cancel/") else alice_api.get(path)

    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")


def test_anonymous_cancel_answers_401(api, alice_api):
    ticket, booked = _booked(alice_api)

    response = cancel(api, booked["id"])

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert issued(ticket) == 1


def test_cancel_with_fields_in_the_body_answers_400_and_changes_nothing(alice_api):
    ticket, booked = _booked(alice_api)
    before = seats(ticket)

    response = alice_api.post(f"/api/v1/reservations/{booked['id']}/cancel/", {"reason": "x"}, format="json")

    assert response.status_code == 400
    assert seats(ticket) == before
