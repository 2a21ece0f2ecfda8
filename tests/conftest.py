"""Shared fixtures: API clients, the personas alice, bob, staff (and a superuser apart), and Redis hygiene.

Tests use the real PostgreSQL (pytest-django's test database) and the real Redis, in the database
number and key prefix that pyproject.toml's pytest env sets (REDIS_URL, REDIS_KEY_PREFIX). They
delete only keys under that prefix.
"""

import contextlib

import pytest
from django.conf import settings
from django_redis import get_redis_connection
from rest_framework.test import APIClient

from accounts.authentication import clear_user_cache
from fastticket import redis as ft_redis
from scripts import harness
from tests.factories import access_token, make_user


def _delete_test_keys() -> None:
    """Delete our keys: the cache's and python-redis-lock's (scripts/harness, SCAN by prefix)."""
    with contextlib.suppress(ft_redis.REDIS_ERRORS):
        harness.delete_keys(get_redis_connection("default"), settings.REDIS_KEY_PREFIX)


@pytest.fixture(autouse=True)
def _unhashed_static_files(settings):
    """Render pages without collectstatic's manifest, which a test run does not need to build.

    With DEBUG off the project stores static files hashed (whitenoise's manifest storage), and
    `{% static %}` raises for a file that collectstatic has not hashed yet; the live server of the
    browser tests serves unhashed names too. The deployment check exercises the real storage.
    """
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _clean_state():
    """Each test starts with no Redis keys of ours, a closed breaker and an empty auth cache."""
    _delete_test_keys()
    ft_redis.reset_breaker()
    clear_user_cache()
    yield
    _delete_test_keys()
    ft_redis.reset_breaker()
    clear_user_cache()


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def alice(db):
    return make_user("alice")


@pytest.fixture
def bob(db):
    return make_user("bob")


@pytest.fixture
def staff(db):
    """A staff account: the admin and the staff endpoints, never silently a superuser."""
    return make_user("staff", is_staff=True)


@pytest.fixture
def superuser(db):
    """A superuser of its own, for the tests that need every right."""
    return make_user("root", is_staff=True, is_superuser=True)


def _client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token(user)}")
    client.user = user
    return client


@pytest.fixture
def alice_api(alice) -> APIClient:
    return _client_for(alice)


@pytest.fixture
def bob_api(bob) -> APIClient:
    return _client_for(bob)


@pytest.fixture
def staff_api(staff) -> APIClient:
    return _client_for(staff)
