"""Booking and cancelling while Redis is unreachable: the database alone keeps them correct."""

import pytest

from reservations.models import Reservation
from tests.factories import make_ticket
from tests.reservations.helpers import cancel, issued, redis, redis_unreachable, reserve
from tickets.sale_state import sale_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def redis_down():
    """Point the cache and the booking lock at a dead Redis; back to the real one afterwards."""
    with redis_unreachable():
        yield


def test_booking_and_cancelling_work_while_redis_is_down(
    redis_down, alice_api, bob_api, django_capture_on_commit_callbacks, caplog
):
    ticket = make_ticket(quantity=1)

    with django_capture_on_commit_callbacks(execute=True):
        booked = reserve(alice_api, ticket.id)
        again = reserve(alice_api, ticket.id)
        refused = reserve(bob_api, ticket.id)
        cancelled = cancel(alice_api, booked.json()["id"])
        rebooked = reserve(bob_api, ticket.id)

    assert booked.status_code == 201
    assert (again.status_code, again.json()["code"]) == (409, "already_reserved")
    assert again.json()["reservation"] == booked.json()["id"]
    assert (refused.status_code, refused.json()["code"]) == (409, "sold_out")
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    assert rebooked.status_code == 201
    assert issued(ticket) == 1
    assert Reservation.objects.filter(ticket=ticket).count() == 2
    assert "redis unavailable" in caplog.text


def test_idempotency_key_replays_while_redis_is_down(redis_down, alice_api):
    ticket = make_ticket()

    first = reserve(alice_api, ticket.id, key="order-1")
    again = reserve(alice_api, ticket.id, key="order-1")

    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert issued(ticket) == 1


def test_booking_uses_the_real_redis_again_after_an_outage(alice_api, bob_api, django_capture_on_commit_callbacks):
    with redis_unreachable():
        assert reserve(alice_api, make_ticket().id).status_code == 201
    ticket = make_ticket(quantity=1)

    with django_capture_on_commit_callbacks(execute=True):
        assert reserve(bob_api, ticket.id).status_code == 201

    # Booked through the line again: its holder wrote the ticket's mirror.
    assert redis().hget(sale_key(ticket.id), "i") == b"1"


def test_a_waiting_room_ticket_answers_503_while_redis_is_down_whatever_its_row_says(redis_down, alice_api):
    """API.md: while Redis is unreachable a ticket with a waiting room sells nothing and answers 503."""
    from datetime import timedelta

    from django.utils import timezone

    from tickets.models import Ticket

    ticket = make_ticket(quantity=5)
    Ticket.objects.filter(pk=ticket.pk).update(
        waiting_room=True, queue_generation=1, event_time=timezone.now() - timedelta(minutes=1)
    )
    reserve(alice_api, make_ticket().id)  # the first Redis call fails and opens the breaker

    refused = reserve(alice_api, ticket.id)

    assert (refused.status_code, refused.json()["code"]) == (503, "unavailable"), refused.content
    assert refused["Retry-After"]
    assert issued(ticket) == 0
