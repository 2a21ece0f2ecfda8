"""The ticket's row lock: a booking checks the ticket as it is once the lock is granted.

The check constraint and the partial unique index catch an oversell or a second seat even without
the row lock; what they cannot catch is a sale window that changed while the booking waited.
Without `FOR UPDATE`, the booking would check the row it read before waiting and sell a seat of a
sale that staff had just paused.
"""

from datetime import timedelta

import psycopg
import pytest
from django.utils import timezone

from reservations.models import Reservation
from tests.concurrency.harness import api_reserve, check_invariants, in_background, issued_count
from tests.factories import access_token, make_ticket
from tests.servers import database_url, lock_waiters, wait_until
from tickets.models import Ticket

pytestmark = pytest.mark.django_db(transaction=True)


def test_booking_waiting_on_the_row_lock_sees_the_sale_paused_meanwhile(alice):
    ticket = make_ticket(quantity=5)
    paused_until = timezone.now() + timedelta(days=1)

    with psycopg.connect(database_url()) as staff:
        # A staff edit holds the row lock and moves the sale start into the future.
        staff.execute(f"SELECT id FROM {Ticket._meta.db_table} WHERE id = %s FOR UPDATE", [ticket.pk])
        with in_background(lambda: api_reserve(access_token(alice), ticket.pk)) as booking:
            wait_until(lock_waiters, timeout=10, what="the booking waiting on the row lock")
            staff.execute(
                f"UPDATE {Ticket._meta.db_table} SET sale_starts_at = %s WHERE id = %s", [paused_until, ticket.pk]
            )
            staff.commit()
            answer = booking()

    assert answer.status == 409, answer
    assert answer.body["code"] == "sale_not_open"
    assert issued_count(ticket.pk) == 0
    assert not Reservation.objects.filter(ticket_id=ticket.pk).exists()
    check_invariants()
