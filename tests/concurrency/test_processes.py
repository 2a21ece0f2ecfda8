"""Races across processes: four gunicorn workers on one database, and a worker killed mid-booking."""

import os
import signal
from functools import partial

import psutil
import pytest
from django.conf import settings

from reservations.models import Reservation
from tests.concurrency.harness import (
    Answer,
    assert_no_server_errors,
    assert_sold_exactly,
    backend_alive,
    check_invariants,
    http_book,
    http_reserve,
    in_background,
    issued_count,
    sale,
    with_retries,
)
from tests.factories import access_token, make_ticket
from tests.servers import DISCONNECTED, lock_waiters, row_lock_held, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SEATS = 40
CROWD = 200


def _postgres_port() -> int:
    return int(settings.DATABASES["default"].get("PORT") or 5432)


def _workers_connected(server, *, local_port: int | None = None, remote_port: int | None = None) -> set[int]:
    """Return the gunicorn workers with a TCP connection from local_port or to remote_port."""
    holders = set()
    for pid in server.worker_pids():
        try:
            connections = psutil.Process(pid).net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            continue
        if any(
            (c.laddr and c.laddr.port == local_port) or (c.raddr and c.raddr.port == remote_port) for c in connections
        ):
            holders.add(pid)
    return holders


def test_crowd_across_four_gunicorn_workers_gets_exactly_40_seats(gunicorn, racers, make_users):
    ticket = make_ticket(quantity=SEATS)
    crowd = make_users(CROWD, "fan")

    attempts = sale(partial(http_book, gunicorn, ticket_id=ticket.pk), crowd, threads=racers)

    assert_sold_exactly(ticket, crowd, attempts, seats=SEATS)
    # The sale really ran in several processes, each with its own database session.
    assert len(_workers_connected(gunicorn, remote_port=_postgres_port())) >= 2
    assert "Traceback" not in gunicorn.log()


def _reserve_or_disconnected(server, token: str, ticket_id) -> Answer | None:
    """Reserve over HTTP; None when the server closed the connection without an answer."""
    try:
        return http_reserve(server, token, ticket_id)
    except DISCONNECTED:
        return None


def test_worker_killed_mid_booking_leaves_nothing_half_written(gunicorn, alice, bob):
    ticket = make_ticket(quantity=5)
    gunicorn.wait_until_ready()
    workers = gunicorn.worker_pids()
    request = partial(_reserve_or_disconnected, gunicorn, access_token(alice), ticket.pk)

    with row_lock_held(ticket.pk), in_background(request) as answer:
        # The booking is inside its transaction, waiting for the ticket row that this test holds.
        backend, client_port = wait_until(lock_waiters, timeout=30, what="a booking waiting on the row lock")[0]
        victim = next(iter(_workers_connected(gunicorn, local_port=client_port)), None)
        assert victim in workers, f"no worker owns the database connection on port {client_port}"
        os.kill(victim, signal.SIGKILL)
        assert answer() is None, "the killed worker's request still got an answer"
    # The row lock is released: the orphaned session runs on, finds its client gone and rolls back.
    wait_until(lambda: not backend_alive(backend), timeout=30, what="the killed worker's session to end")

    assert not Reservation.objects.filter(ticket=ticket).exists()
    assert issued_count(ticket.pk) == 0
    gunicorn.wait_until_ready()
    assert victim not in gunicorn.worker_pids()
    retry = with_retries(partial(http_reserve, gunicorn, access_token(bob), ticket.pk))
    assert_no_server_errors([retry])
    assert retry.final.status == 201, retry.final
    assert issued_count(ticket.pk) == 1
    assert "Traceback" not in gunicorn.log()
    check_invariants()
