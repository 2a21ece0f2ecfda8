"""/readyz and /healthz served by gunicorn, with each dependency up or down (API.md, Operations)."""

import pytest

from tests.servers import GunicornServer, closed_port

# django_db makes pytest-django create the test database the healthy servers point at.
pytestmark = [pytest.mark.slow, pytest.mark.django_db]

# A probe that answers later than this is as bad as no answer to a load balancer.
PROBE_DEADLINE_SECONDS = 2
FOREIGN_HOST = {"Host": "10.9.8.7"}


@pytest.fixture(scope="module")
def healthy_server(django_db_setup, tmp_path_factory):
    log = tmp_path_factory.mktemp("healthy") / "gunicorn.log"
    with GunicornServer(log_path=log) as server:
        yield server


@pytest.fixture(scope="module")
def redis_down_server(django_db_setup, tmp_path_factory):
    log = tmp_path_factory.mktemp("redis-down") / "gunicorn.log"
    redis_url = f"redis://127.0.0.1:{closed_port()}/0"
    with GunicornServer(log_path=log, REDIS_URL=redis_url) as server:
        yield server


@pytest.fixture(scope="module")
def database_down_server(tmp_path_factory):
    log = tmp_path_factory.mktemp("database-down") / "gunicorn.log"
    database_url = f"postgres://postgres@127.0.0.1:{closed_port()}/fastticket"
    with GunicornServer(log_path=log, DATABASE_URL=database_url) as server:
        yield server


def test_readyz_answers_200_with_database_and_redis_ok(healthy_server):
    reply = healthy_server.request("GET", "/readyz")

    assert reply.status == 200, reply.body
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.json() == {"database": "ok", "redis": "ok"}


def test_readyz_answers_a_host_outside_allowed_hosts_without_auth_or_redirect(healthy_server):
    reply = healthy_server.request("GET", "/readyz", headers=FOREIGN_HOST)

    assert reply.status == 200, reply.body
    assert reply.json() == {"database": "ok", "redis": "ok"}


def test_healthz_answers_a_host_outside_allowed_hosts_under_gunicorn(healthy_server):
    reply = healthy_server.request("GET", "/healthz", headers=FOREIGN_HOST)

    assert reply.status == 200, reply.body
    assert reply.json() == {"status": "ok"}


def test_readyz_with_redis_down_still_answers_200_with_redis_error_within_2_seconds(redis_down_server):
    reply = redis_down_server.request("GET", "/readyz")

    assert reply.status == 200, reply.body
    assert reply.json() == {"database": "ok", "redis": "error"}
    assert reply.seconds < PROBE_DEADLINE_SECONDS


def test_readyz_with_database_down_answers_503_within_2_seconds(database_down_server):
    reply = database_down_server.request("GET", "/readyz")

    assert reply.status == 503, reply.body
    assert reply.json() == {"database": "error", "redis": "ok"}
    assert reply.seconds < PROBE_DEADLINE_SECONDS


def test_healthz_answers_200_while_the_database_is_down(database_down_server):
    reply = database_down_server.request("GET", "/healthz")

    assert reply.status == 200, reply.body
    assert reply.json() == {"status": "ok"}
