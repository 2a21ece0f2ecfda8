"""A crowd races for a few seats from many threads; and the control that proves the harness sees an oversell."""

import time
from functools import partial

import pytest
from django.core.management.base import CommandError
from django.db import transaction
from django.utils import timezone

from reservations.models import Reservation, ReservationStatus
from tests.concurrency.harness import (
    Answer,
    api_book,
    api_reserve,
    assert_no_server_errors,
    assert_sold_exactly,
    check_invariants,
    confirmed_count,
    issued_count,
    run_together,
    sale,
    with_retries,
)
from tests.factories import access_token, make_ticket
from tickets.models import Ticket

pytestmark = pytest.mark.django_db(transaction=True)

SEATS = 50
CROWD = 300


def test_crowd_of_300_gets_exactly_50_seats(racers, make_users):
    ticket = make_ticket(quantity=SEATS)
    crowd = make_users(CROWD, "fan")

    attempts = sale(partial(api_book, ticket_id=ticket.pk), crowd, threads=racers)

    assert_sold_exactly(ticket, crowd, attempts, seats=SEATS)


def test_one_user_sending_30_reserves_at_once_gets_exactly_one_seat(racers, alice):
    ticket = make_ticket(quantity=10)
    token = access_token(alice)

    attempts = run_together([partial(with_retries, partial(api_reserve, token, ticket.pk))] * 30, threads=racers)

    assert_no_server_errors(attempts)
    created = [attempt.final for attempt in attempts if attempt.final.status == 201]
    assert len(created) == 1
    held = created[0].body["id"]
    for answer in (attempt.final for attempt in attempts if attempt.final.status != 201):
        assert (answer.status, answer.code, answer.body.get("reservation")) == (409, "already_reserved", held)
    stored = [(str(r.pk), r.user_id, r.status) for r in Reservation.objects.filter(ticket=ticket)]
    assert stored == [(held, alice.pk, ReservationStatus.CONFIRMED)]
    assert issued_count(ticket.pk) == 1 == confirmed_count(ticket.pk)
    check_invariants()


def _unsafe_book(user, token: str, *, ticket_id) -> Answer:
    """Book the way this project must never book: no Redis lock, no row lock, a read-modify-write count."""
    ticket = Ticket.objects.get(pk=ticket_id)
    if ticket.issued_count >= ticket.quantity:
        return Answer(409, {"code": "sold_out"})
    time.sleep(0.001)
    with transaction.atomic():
        reservation = Reservation.objects.create(
            user=user, ticket_id=ticket_id, status=ReservationStatus.CONFIRMED, reserved_at=timezone.now()
        )
    Ticket.objects.filter(pk=ticket_id).update(issued_count=ticket.issued_count + 1)
    return Answer(201, {"id": str(reservation.pk)})


def test_harness_detects_oversell_without_locks(racers, make_users):
    ticket = make_ticket(quantity=SEATS)
    crowd = make_users(CROWD, "fan")

    attempts = sale(partial(_unsafe_book, ticket_id=ticket.pk), crowd, threads=racers)

    with pytest.raises(AssertionError):
        assert_sold_exactly(ticket, crowd, attempts, seats=SEATS)
    with pytest.raises(CommandError, match="invariant violation"):
        check_invariants()
    sold = confirmed_count(ticket.pk)
    assert sold > SEATS or sold != issued_count(ticket.pk), "the unsafe booking neither oversold nor lost a count"
