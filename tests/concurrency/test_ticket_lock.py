"""Staff edits and cancels take the ticket's Redis lock, like bookings, so that a batch never crosses
them, and bookings arriving meanwhile do not overtake them."""

import threading
import time

import pytest
from django.db import connection
from django_redis import get_redis_connection
from rest_framework.test import APIClient

from reservations.models import Reservation
from reservations.services import reservation_create
from tests.concurrency.harness import api_cancel, api_reserve, in_background
from tests.factories import access_token, make_ticket
from tests.servers import wait_until
from tickets.locks import TicketLock, ticket_keys
from tickets.models import Ticket

pytestmark = pytest.mark.django_db(transaction=True)


def test_staff_quantity_change_waits_for_the_ticket_lock_held_by_a_booking(staff):
    ticket = make_ticket(quantity=1)
    holder = TicketLock(get_redis_connection("locks"), ticket.pk)
    assert holder.acquire_within(0)
    answers = []

    def raise_quantity() -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token(staff)}")
        try:
            answers.append(client.patch(f"/api/v1/tickets/{ticket.pk}/", {"quantity": 5}, format="json").status_code)
        finally:
            connection.close()

    editor = threading.Thread(target=raise_quantity)
    editor.start()
    try:
        time.sleep(1)
        quantity_while_held = Ticket.objects.get(pk=ticket.pk).quantity
    finally:
        holder.release()
        editor.join(timeout=30)

    assert quantity_while_held == 1, "the staff edit went past a held ticket lock"
    assert answers == [200]
    assert Ticket.objects.get(pk=ticket.pk).quantity == 5


def test_a_cancel_waiting_for_the_lock_goes_before_bookings_that_arrive_while_it_waits(alice, bob):
    # A seat to spare, so that the booking is not refused as sold out before it joins the line.
    ticket = make_ticket(quantity=2)
    held = reservation_create(user=alice, ticket_id=ticket.pk)
    client = get_redis_connection("locks")
    keys = ticket_keys(ticket.pk)
    holder = TicketLock(client, ticket.pk)
    assert holder.acquire_within(0)

    with in_background(lambda: api_cancel(access_token(alice), held.pk)) as cancelled:
        wait_until(lambda: client.zcard(keys.outside) == 1, timeout=10, what="the cancel to wait for the lock")
        # The holder dies: its lock expires with no release, so nothing wakes the cancel before its
        # next try (up to half a second). A booking arriving in that gap must queue behind it.
        client.pexpire(keys.lock, 1)
        wait_until(lambda: not client.exists(keys.lock), timeout=5, what="the lock to expire")
        booked = api_reserve(access_token(bob), ticket.pk)
        cancel = cancelled()

    assert cancel.status == 200, cancel
    assert booked.status == 201, booked
    cancelled_at = Reservation.objects.get(pk=held.pk).cancelled_at
    booked_at = Reservation.objects.get(pk=booked.body["id"]).reserved_at
    assert cancelled_at < booked_at, "the booking overtook the cancel that was waiting for the lock"
