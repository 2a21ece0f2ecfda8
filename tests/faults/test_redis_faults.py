"""Redis is unreachable under a running gunicorn: throttles fail open and booking stays correct."""

import pytest
from django.core.management import call_command

from reservations.models import Reservation, ReservationStatus
from tests.factories import access_token, make_ticket, make_user
from tests.servers import GunicornServer, closed_port

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

LOW_RATE = "2/min"


@pytest.fixture
def server(tmp_path):
    env = {
        "REDIS_URL": f"redis://127.0.0.1:{closed_port()}/15",
        "THROTTLE_ANON": LOW_RATE,
        "THROTTLE_USER": LOW_RATE,
        "THROTTLE_AUTH": LOW_RATE,
        "THROTTLE_BOOKING": LOW_RATE,
    }
    with GunicornServer(log_path=tmp_path / "gunicorn.log", **env) as server:
        yield server


def test_unreachable_redis_lets_requests_past_the_throttles(server):
    replies = [server.request("GET", "/api/v1/tickets/") for _ in range(5)]
    ready = server.request("GET", "/readyz")

    assert [reply.status for reply in replies] == [200] * 5
    assert ready.status == 200
    assert ready.json() == {"database": "ok", "redis": "error"}


def test_unreachable_redis_still_books_first_come_first_served(server):
    ticket = make_ticket(quantity=2)
    users = [make_user(f"fan{n}") for n in range(3)]
    path = f"/api/v1/tickets/{ticket.pk}/reserve/"

    first, second, third = (server.request("POST", path, token=access_token(user)) for user in users)
    again = server.request("POST", path, token=access_token(users[0]))

    assert (first.status, second.status) == (201, 201)
    assert (third.status, third.json()["code"]) == (409, "sold_out")
    assert (again.status, again.json()["code"]) == (409, "already_reserved")
    ticket.refresh_from_db()
    assert ticket.issued_count == 2
    assert Reservation.objects.filter(ticket=ticket, status=ReservationStatus.CONFIRMED).count() == 2
    call_command("check_invariants")
    assert " 500 " not in server.log()
