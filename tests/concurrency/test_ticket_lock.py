"""Staff edits take the ticket's Redis lock, like bookings, so that a batch never crosses them."""

import threading
import time

import pytest
from django.db import connection
from django_redis import get_redis_connection
from rest_framework.test import APIClient

from tests.factories import access_token, make_ticket
from tickets.locks import TicketLock
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
