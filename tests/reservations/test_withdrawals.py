"""A booking settled apart from its line is withdrawn for good: no holder's batch books it later.

This is what keeps a late 503 true when a holder that took the booking froze outside its
transaction (a paused process) and wakes up after the request answered.
"""

import time
import uuid

import pytest

from reservations.batch import booking_batch_book, booking_settle
from reservations.line import Entry
from reservations.models import BookingWithdrawal, Reservation
from tests.factories import make_ticket

pytestmark = pytest.mark.django_db


def _entry(user, *, key: str | None = None) -> Entry:
    return Entry(str(uuid.uuid4()), str(user.pk), key, int(time.time() * 1000) + 3000)


def test_a_settled_booking_that_was_not_booked_is_withdrawn_and_never_booked_by_a_later_batch(alice, bob):
    ticket = make_ticket(quantity=5)
    late, other = _entry(alice), _entry(bob)

    settled = booking_settle(ticket_id=str(ticket.pk), entry=late)
    # The holder that had taken it wakes up and books its batch.
    result = booking_batch_book(ticket_id=str(ticket.pk), entries=[late, other])

    assert not settled.booked and settled.answer.startswith(b"Ebusy")
    assert BookingWithdrawal.objects.filter(pk=late.rid).exists()
    assert [outcome.booked for outcome in result.outcomes] == [False, True]
    assert list(Reservation.objects.filter(ticket=ticket).values_list("user_id", flat=True)) == [bob.pk]


def test_a_settled_booking_that_was_booked_answers_its_201_and_is_not_withdrawn(alice):
    ticket = make_ticket(quantity=5)
    booked = _entry(alice)
    result = booking_batch_book(ticket_id=str(ticket.pk), entries=[booked])

    settled = booking_settle(ticket_id=str(ticket.pk), entry=booked)

    assert result.outcomes[0].booked and settled.booked
    assert settled.answer == result.outcomes[0].answer
    assert not BookingWithdrawal.objects.filter(pk=booked.rid).exists()


def test_a_withdrawn_booking_with_a_key_leaves_no_stored_answer(alice):
    from reservations.models import IdempotencyRecord

    ticket = make_ticket(quantity=5)
    late = _entry(alice, key="order-9")
    booking_settle(ticket_id=str(ticket.pk), entry=late)

    booking_batch_book(ticket_id=str(ticket.pk), entries=[late])

    assert not IdempotencyRecord.objects.filter(user=alice, key="order-9").exists()
