"""The database fails under a running gunicorn: a 503 `unavailable` with Retry-After, never a 500."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.management import call_command
from django.db import connection

from reservations.models import Reservation
from tests.factories import access_token, make_ticket
from tests.servers import GunicornServer, backend_waiting_for_a_lock, closed_port, row_lock_held

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _assert_unavailable(reply) -> None:
    assert reply.status == 503, reply.body
    assert reply.json()["code"] == "unavailable"
    assert int(reply.headers["Retry-After"]) >= 1


@pytest.fixture
def server(tmp_path):
    # A row-lock wait longer than the test needs to find and kill the waiting backend.
    with GunicornServer(log_path=tmp_path / "gunicorn.log", BOOKING_DB_LOCK_TIMEOUT_MS="30000") as server:
        yield server


def test_booking_whose_connection_is_killed_mid_transaction_answers_503_and_writes_nothing(server, alice):
    ticket = make_ticket(quantity=5)
    token = access_token(alice)
    path = f"/api/v1/tickets/{ticket.pk}/reserve/"

    with row_lock_held(ticket.pk), ThreadPoolExecutor(max_workers=1) as pool:
        booking = pool.submit(server.request, "POST", path, token=token)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [backend_waiting_for_a_lock()])
        reply = booking.result(timeout=60)

    _assert_unavailable(reply)
    ticket.refresh_from_db()
    assert ticket.issued_count == 0
    assert not Reservation.objects.filter(ticket=ticket).exists()
    call_command("check_invariants")
    assert server.request("POST", path, token=token).status == 201


def test_unreachable_database_makes_readyz_and_the_api_answer_503_unavailable(tmp_path, alice):
    token = access_token(alice)
    down = f"postgres://postgres@127.0.0.1:{closed_port()}/fastticket"
    with GunicornServer(log_path=tmp_path / "gunicorn.log", DATABASE_URL=down) as server:
        # Each request's timeout bounds how long an answer may take: a few seconds, not a hang.
        ready = server.request("GET", "/readyz", timeout=10)
        tickets = server.request("GET", "/api/v1/tickets/", timeout=10)
        me = server.request("GET", "/api/v1/auth/me/", token=token, timeout=10)
        login = server.request(
            "POST", "/api/v1/auth/login/", json_body={"username": "alice", "password": "x"}, timeout=10
        )

    assert ready.status == 503
    assert ready.json()["database"] == "error"
    for reply in (tickets, me, login):
        _assert_unavailable(reply)
