"""Fixtures for the races: how many threads the shared PostgreSQL allows, gunicorn, a private Redis.

Ports: the shared gunicorn 8145, the private redis-server 8146, a gunicorn of one test's own 8147.
"""

import pytest
from django.db import connection

from tests.concurrency.servers import Gunicorn, PrivateRedis
from tests.factories import access_token, make_user

GUNICORN_PORT = 8145
PRIVATE_REDIS_PORT = 8146
OWN_GUNICORN_PORT = 8147
MAX_THREADS = 40


@pytest.fixture(scope="session")
def racers(django_db_setup, django_db_blocker) -> int:
    """Return how many racing threads to use: each holds a connection, and other sessions share the server."""
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute("SHOW max_connections")
        max_connections = int(cursor.fetchone()[0])
    return max(8, min(MAX_THREADS, max_connections // 2 - 10))


@pytest.fixture(scope="module")
def gunicorn(django_db_setup, django_db_blocker):
    """Serve the app from 4 sync worker processes on the test database.

    The database lock wait is raised to 8 s so that a test can find and kill a worker that waits on a
    row lock before it would give up with 503.
    """
    server = Gunicorn(port=GUNICORN_PORT, env={"BOOKING_DB_LOCK_TIMEOUT_MS": "8000"})
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def start_gunicorn():
    """Start a gunicorn with extra environment variables for one test (e.g. another REDIS_URL)."""
    servers = []

    def start(**env: str) -> Gunicorn:
        server = Gunicorn(port=OWN_GUNICORN_PORT, env={"BOOKING_DB_LOCK_TIMEOUT_MS": "8000", **env})
        servers.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def private_redis():
    server = PrivateRedis(port=PRIVATE_REDIS_PORT)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def make_users():
    """Build n users with access tokens: [(user, token), ...]."""

    def build(n: int, prefix: str) -> list[tuple]:
        users = [make_user(f"{prefix}{i}") for i in range(n)]
        return [(user, access_token(user)) for user in users]

    return build
