"""A staff quantity change racing bookings from real threads stays consistent."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.management import call_command
from django.db import connection
from rest_framework.test import APIClient

from reservations.models import Reservation, ReservationStatus
from tests.factories import access_token, make_ticket, make_user

BOOKINGS = 8
NEW_QUANTITY = 5


def _client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token(user)}")
    return client


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("patch_after", [0, 3, 6])
def test_quantity_cut_racing_bookings_never_issues_above_the_quantity(staff, patch_after):
    """Cut quantity 10 to 5 while 8 bookings are in flight, after `patch_after` of them answered."""
    ticket = make_ticket(quantity=10)
    url = f"/api/v1/tickets/{ticket.id}/"
    clients = [_client(make_user(f"fan{n}")) for n in range(BOOKINGS)]
    staff_client = _client(staff)
    start = threading.Barrier(BOOKINGS + 1)
    answered = threading.Semaphore(0)

    def book(client):
        try:
            start.wait(timeout=30)
            return client.post(f"{url}reserve/")
        finally:
            answered.release()
            connection.close()

    def cut():
        try:
            start.wait(timeout=30)
            for _ in range(patch_after):
                assert answered.acquire(timeout=60)
            return staff_client.patch(url, {"quantity": NEW_QUANTITY}, format="json")
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=BOOKINGS + 1) as pool:
        bookings = [pool.submit(book, client) for client in clients]
        patch = pool.submit(cut).result(timeout=120)
        answers = [booking.result(timeout=120) for booking in bookings]

    assert all(a.status_code == 201 or a.json().get("code") in {"sold_out", "busy"} for a in answers), [
        (a.status_code, a.content) for a in answers
    ]
    booked = sum(a.status_code == 201 for a in answers)
    ticket.refresh_from_db()
    confirmed = Reservation.objects.filter(ticket=ticket, status=ReservationStatus.CONFIRMED).count()
    assert ticket.issued_count == confirmed == booked
    assert ticket.issued_count <= ticket.quantity
    if patch.status_code == 200:
        assert ticket.quantity == NEW_QUANTITY
        assert booked <= NEW_QUANTITY
    else:
        assert patch.status_code == 400, patch.content
        assert "quantity" in patch.json()
        assert ticket.quantity == 10
        assert booked > NEW_QUANTITY
    if patch_after > NEW_QUANTITY:
        assert patch.status_code == 400, "more seats were issued than the new quantity before the PATCH"
    call_command("check_invariants")
