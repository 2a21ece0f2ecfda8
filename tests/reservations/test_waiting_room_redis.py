"""The waiting room while Redis is down and after it restarts, from API.md: a ticket with a waiting
room answers 503 `unavailable` to join, ask, leave and reserve; other tickets sell as before; with
an append-only file the queue carries on from where it was.

A private redis-server (SIGKILLed and started again on the same port) serves this process through
tests.concurrency.servers.app_redis.
"""

import time

import pytest
from django.conf import settings

from tests.concurrency.servers import PrivateRedis, app_redis
from tests.reservations.helpers import issued, reserve, seats
from tests.reservations.waiting_room import ask, join, leave, place_of, room_ticket, stats

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def durable_redis(tmp_path):
    """A private Redis with an append-only file, serving this process's caches and locks."""
    server = PrivateRedis(log_path=tmp_path / "redis.log", data_dir=tmp_path, append_only=True)
    with server, app_redis(server.url):
        yield server


def _assert_unavailable(response) -> None:
    assert response.status_code == 503, response.content
    assert response.json()["code"] == "unavailable"
    assert "detail" in response.json()
    assert int(response["Retry-After"]) >= 1


def _restart(server) -> None:
    server.start()
    time.sleep(settings.REDIS_RETRY_AFTER + 0.2)  # the breaker closes by itself


def test_while_redis_is_down_a_waiting_room_answers_503_and_the_queue_carries_on_after_a_restart(
    durable_redis, staff_api, alice_api, bob_api, carol_api, dave_api
):
    ticket = room_ticket(quantity=2, admit_per_minute=1)
    plain = room_ticket(quantity=5, waiting_room=False)
    for client in (alice_api, bob_api, carol_api):
        join(client, ticket.pk)
    before = {
        name: place_of(client, ticket.pk)
        for name, client in (("alice", alice_api), ("bob", bob_api), ("carol", carol_api))
    }
    assert [before[name]["status"] for name in ("alice", "bob", "carol")] == ["admitted", "waiting", "waiting"]

    durable_redis.kill()

    _assert_unavailable(join(dave_api, ticket.pk))
    _assert_unavailable(join(bob_api, ticket.pk))
    _assert_unavailable(ask(bob_api, ticket.pk))
    _assert_unavailable(leave(carol_api, ticket.pk))
    _assert_unavailable(reserve(alice_api, ticket.pk))
    _assert_unavailable(reserve(dave_api, ticket.pk))
    assert seats(ticket) == (0, [])
    # A ticket without a waiting room sells as before.
    assert reserve(alice_api, plain.pk).status_code == 201
    assert join(alice_api, plain.pk).json()["code"] == "no_waiting_room"
    assert issued(plain) == 1

    _restart(durable_redis)

    after = {
        name: place_of(client, ticket.pk)
        for name, client in (("alice", alice_api), ("bob", bob_api), ("carol", carol_api))
    }
    for name in before:
        assert after[name]["status"] == before[name]["status"], name
        assert after[name]["joined_at"] == before[name]["joined_at"], name
        assert after[name]["admitted_until"] == before[name]["admitted_until"], name
    assert (after["bob"]["position"], after["carol"]["position"]) == (1, 2), "the 503 leave changed the line"
    assert ask(dave_api, ticket.pk).status_code == 404, "the 503 join left a place"
    assert stats(staff_api, ticket.pk) == {"waiting": 2, "admitted": 1, "booked": 0, "expired": 0}
    assert reserve(alice_api, ticket.pk).status_code == 201
    assert join(dave_api, ticket.pk).json()["position"] == 3


def test_while_redis_is_down_staff_still_see_the_sale(durable_redis, staff_api, alice_api):
    """API.md: the sales view answers while Redis is unreachable (its `refused` is null then)."""
    ticket = room_ticket()
    join(alice_api, ticket.pk)

    durable_redis.kill()
    sales = staff_api.get(f"/api/v1/tickets/{ticket.pk}/sales/")
    counts = staff_api.get(f"/api/v1/tickets/{ticket.pk}/queue/stats/")

    assert sales.status_code == 200, sales.content
    assert all(second["refused"] is None for second in sales.json()["per_second"])
    assert counts.status_code in (200, 503), counts.content


def test_after_a_restart_without_its_data_the_waiting_room_works_again(tmp_path, staff_api, alice_api, bob_api):
    """A Redis that lost everything (no append-only file): the ticket's mirror is rebuilt from the
    database and a new line starts."""
    server = PrivateRedis(log_path=tmp_path / "redis.log")
    with server, app_redis(server.url):
        ticket = room_ticket(quantity=1)
        join(alice_api, ticket.pk)
        server.kill()
        _restart(server)

        assert ask(alice_api, ticket.pk).status_code == 404
        assert join(bob_api, ticket.pk).status_code == 201
        assert reserve(bob_api, ticket.pk).status_code == 201
        assert join(alice_api, ticket.pk).json()["code"] == "sold_out"
