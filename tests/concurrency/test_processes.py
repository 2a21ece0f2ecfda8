"""Races across processes: four gunicorn workers on one database, and a worker killed mid-booking."""

import http.client
import os
import signal
import urllib.error
from functools import partial

import psutil
import pytest

from reservations.models import Reservation
from tests.concurrency.harness import (
    Answer,
    assert_no_server_errors,
    assert_sold_exactly,
    backend_alive,
    check_invariants,
    http_call,
    in_background,
    issued_count,
    lock_waiters,
    row_lock_held,
    sale,
    wait_until,
    with_retries,
)
from tests.factories import access_token, make_ticket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SEATS = 40
CROWD = 200
POSTGRES_PORT = 5432


def _reserve_path(ticket) -> str:
    return f"/api/v1/tickets/{ticket.pk}/reserve/"


def _workers_with_database_connections(server) -> set[int]:
    """Return the gunicorn workers holding an open connection to PostgreSQL."""
    holders = set()
    for pid in server.worker_pids():
        try:
            connections = psutil.Process(pid).net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            continue
        if any(c.raddr and c.raddr.port == POSTGRES_PORT for c in connections):
            holders.add(pid)
    return holders


def test_crowd_across_four_gunicorn_workers_gets_exactly_40_seats(gunicorn, racers, make_users):
    ticket = make_ticket(quantity=SEATS)
    crowd = make_users(CROWD, "fan")

    def book(user, token: str) -> Answer:
        return http_call(gunicorn.base_url, "POST", _reserve_path(ticket), token=token)

    attempts = sale(book, crowd, threads=racers)

    assert_sold_exactly(ticket, crowd, attempts, seats=SEATS)
    # The sale really ran in several processes, each with its own database session.
    assert len(_workers_with_database_connections(gunicorn)) >= 2
    assert "Traceback" not in gunicorn.log_text()


def _reserve_or_disconnected(base_url: str, path: str, token: str) -> Answer | None:
    """Reserve over HTTP; None when the server closed the connection without an answer."""
    try:
        return http_call(base_url, "POST", path, token=token)
    except (http.client.RemoteDisconnected, ConnectionError, urllib.error.URLError):
        return None


def test_worker_killed_mid_booking_leaves_nothing_half_written(gunicorn, alice, bob):
    ticket = make_ticket(quantity=5)
    workers = gunicorn.wait_workers(gunicorn.workers)
    request = partial(_reserve_or_disconnected, gunicorn.base_url, _reserve_path(ticket), access_token(alice))

    with row_lock_held(ticket.pk), in_background(request) as answer:
        # The booking is inside its transaction, waiting for the ticket row that this test holds.
        backend, client_port = wait_until(lock_waiters, timeout=30, what="a booking waiting on the row lock")[0]
        victim = gunicorn.worker_with_local_port(client_port)
        assert victim in workers, f"no worker owns the database connection on port {client_port}"
        os.kill(victim, signal.SIGKILL)
        assert answer() is None, "the killed worker's request still got an answer"
    # The row lock is released: the orphaned session runs on, finds its client gone and rolls back.
    wait_until(lambda: not backend_alive(backend), timeout=30, what="the killed worker's session to end")

    assert not Reservation.objects.filter(ticket=ticket).exists()
    assert issued_count(ticket.pk) == 0
    restarted = gunicorn.wait_workers(gunicorn.workers)
    assert victim not in restarted
    retry = with_retries(partial(http_call, gunicorn.base_url, "POST", _reserve_path(ticket), token=access_token(bob)))
    assert_no_server_errors([retry])
    assert retry.final.status == 201, retry.final
    assert issued_count(ticket.pk) == 1
    assert "Traceback" not in gunicorn.log_text()
    check_invariants()
