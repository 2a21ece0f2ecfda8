"""Fixtures for the races: how many threads the shared PostgreSQL allows, gunicorn, a private Redis.

Every server gets its port from the operating system (scripts/harness).
"""

from contextlib import ExitStack

import pytest
from django.db import connection

from tests.concurrency.servers import PrivateRedis, race_gunicorn
from tests.factories import access_token, make_user
from tests.servers import GunicornServer

MAX_THREADS = 40


@pytest.fixture(scope="session")
def racers(django_db_setup, django_db_blocker) -> int:
    """Return how many racing threads to use: each holds a connection, and other sessions share the server."""
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute("SHOW max_connections")
        max_connections = int(cursor.fetchone()[0])
    return max(8, min(MAX_THREADS, max_connections // 2 - 10))


@pytest.fixture(scope="module")
def gunicorn(django_db_setup, tmp_path_factory):
    """Serve the app from 4 sync worker processes on the test database."""
    with race_gunicorn(log_path=tmp_path_factory.mktemp("gunicorn") / "gunicorn.log") as server:
        yield server


@pytest.fixture
def start_gunicorn(tmp_path):
    """Start a gunicorn with extra environment variables for one test (e.g. another REDIS_URL)."""
    with ExitStack() as servers:

        def start(**env: str) -> GunicornServer:
            return servers.enter_context(race_gunicorn(log_path=tmp_path / "gunicorn.log", **env))

        yield start


@pytest.fixture
def private_redis(tmp_path):
    with PrivateRedis(log_path=tmp_path / "redis.log") as server:
        yield server


@pytest.fixture
def make_users():
    """Build n users with access tokens: [(user, token), ...]."""

    def build(n: int, prefix: str) -> list[tuple]:
        users = [make_user(f"{prefix}{i}") for i in range(n)]
        return [(user, access_token(user)) for user in users]

    return build
