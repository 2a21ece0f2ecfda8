"""A gunicorn worker SIGKILLed in the middle of bookings: API.md's guarantees still hold."""

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor, wait

import pytest
from django.core.management import call_command

from reservations.models import Reservation, ReservationStatus
from tests.factories import access_token, make_ticket, make_user
from tests.servers import DISCONNECTED, GunicornServer, backend_waiting_for_a_lock, row_lock_held, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _kill_worker(server: GunicornServer) -> None:
    """SIGKILL one worker, then wait until the master has replaced it."""
    victim = server.worker_pids()[0]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: victim not in server.worker_pids(), timeout=30, what="the master to reap the killed worker")
    server.wait_until_ready()  # until a new worker stands in its place


def _book(server: GunicornServer, path: str, token: str) -> int | None:
    """Book and return the status, or None when the worker died before answering."""
    try:
        return server.request("POST", path, token=token).status
    except DISCONNECTED:
        return None


def _book_once_the_lock_expires(server: GunicornServer, path: str, token: str) -> int:
    """Book, retrying after each 503 `busy` as Retry-After asks, for at most 30 seconds."""
    deadline = time.monotonic() + 30
    while True:
        reply = server.request("POST", path, token=token)
        if reply.status != 503 or time.monotonic() > deadline:
            return reply.status
        assert reply.json()["code"] == "busy"
        time.sleep(int(reply.headers["Retry-After"]))


def test_worker_killed_while_its_booking_waits_for_the_row_lock_writes_nothing(tmp_path, alice):
    ticket = make_ticket(quantity=5)
    path = f"/api/v1/tickets/{ticket.pk}/reserve/"
    with GunicornServer(log_path=tmp_path / "gunicorn.log", BOOKING_DB_LOCK_TIMEOUT_MS="30000") as server:
        with row_lock_held(ticket.pk), ThreadPoolExecutor(max_workers=1) as pool:
            booking = pool.submit(_book, server, path, access_token(alice))
            backend_waiting_for_a_lock()
            _kill_worker(server)
            assert booking.result(timeout=60) is None

        ticket.refresh_from_db()
        assert ticket.issued_count == 0
        assert not Reservation.objects.filter(ticket=ticket).exists()
        call_command("check_invariants")
        # The dead worker's Redis lock refuses the ticket (503 busy) until it expires, not forever.
        assert _book_once_the_lock_expires(server, path, access_token(alice)) == 201


def test_worker_killed_during_a_rush_of_bookings_keeps_every_guarantee(tmp_path):
    ticket = make_ticket(quantity=6)
    users = [make_user(f"fan{n}") for n in range(16)]
    path = f"/api/v1/tickets/{ticket.pk}/reserve/"
    with (
        GunicornServer(log_path=tmp_path / "gunicorn.log", workers=2) as server,
        ThreadPoolExecutor(max_workers=8) as pool,
    ):
        bookings = {user: pool.submit(_book, server, path, access_token(user)) for user in users}
        while sum(future.done() for future in bookings.values()) < 3:
            time.sleep(0.01)
        _kill_worker(server)
        wait(bookings.values(), timeout=120)

    ticket.refresh_from_db()
    confirmed = Reservation.objects.filter(ticket=ticket, status=ReservationStatus.CONFIRMED)
    holders = set(confirmed.values_list("user_id", flat=True))
    for user, future in bookings.items():
        status = future.result()
        if status == 201:
            assert user.pk in holders, f"{user.username} got a 201 with no reservation stored"
        elif status is not None:
            assert user.pk not in holders, f"{user.username} got a {status} but holds a seat"
    assert ticket.issued_count == len(holders) == confirmed.count() <= ticket.quantity
    call_command("check_invariants")
