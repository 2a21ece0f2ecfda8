"""Token lifetimes: 15 minutes and 1 day by default, else JWT_ACCESS_MINUTES and JWT_REFRESH_DAYS."""

import json

import pytest
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from tests.factories import PASSWORD
from tests.ops.servers import needs_no_local_env_file, run_python

# Mints a pair in a fresh interpreter, where the settings read the environment it was given.
MINT_TOKENS = """
import django, json
django.setup()
from rest_framework_simplejwt.tokens import RefreshToken
refresh = RefreshToken()
access = refresh.access_token
print(json.dumps({"access": access["exp"] - access["iat"], "refresh": refresh["exp"] - refresh["iat"]}))
"""


def _lifetime(token) -> int:
    return token["exp"] - token["iat"]


@pytest.mark.django_db
def test_login_tokens_live_15_minutes_and_1_day_by_default(api, alice):
    body = api.post("/api/v1/auth/login/", {"username": "alice", "password": PASSWORD}, format="json").json()

    assert _lifetime(AccessToken(body["access"])) == 15 * 60
    assert _lifetime(RefreshToken(body["refresh"])) == 24 * 60 * 60


@pytest.mark.django_db
def test_rotated_refresh_token_lives_1_day(api, alice):
    login = api.post("/api/v1/auth/login/", {"username": "alice", "password": PASSWORD}, format="json").json()

    body = api.post("/api/v1/auth/refresh/", {"refresh": login["refresh"]}, format="json").json()

    assert _lifetime(AccessToken(body["access"])) == 15 * 60
    assert _lifetime(RefreshToken(body["refresh"])) == 24 * 60 * 60


@pytest.mark.slow
def test_lifetimes_come_from_jwt_access_minutes_and_jwt_refresh_days():
    result = run_python(MINT_TOKENS, JWT_ACCESS_MINUTES="5", JWT_REFRESH_DAYS="3")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"access": 5 * 60, "refresh": 3 * 24 * 60 * 60}


@pytest.mark.slow
@needs_no_local_env_file
def test_lifetimes_default_to_15_minutes_and_1_day_without_the_variables():
    result = run_python(MINT_TOKENS, JWT_ACCESS_MINUTES=None, JWT_REFRESH_DAYS=None)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"access": 15 * 60, "refresh": 24 * 60 * 60}
