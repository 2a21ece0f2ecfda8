"""Token lifetimes: 15 minutes and 1 day by default, else JWT_ACCESS_MINUTES and JWT_REFRESH_DAYS."""

import json
import time
from datetime import timedelta

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
def test_a_long_refresh_chain_never_outlives_the_login(api, alice):
    login = api.post("/api/v1/auth/login/", {"username": "alice", "password": PASSWORD}, format="json").json()
    session_end = RefreshToken(login["refresh"])["exp"]
    refresh = login["refresh"]

    for _ in range(30):
        response = api.post("/api/v1/auth/refresh/", {"refresh": refresh}, format="json")
        assert response.status_code == 200, response.content
        refresh = response.json()["refresh"]
        assert RefreshToken(refresh)["exp"] == session_end
        assert AccessToken(response.json()["access"])["exp"] <= session_end


@pytest.mark.django_db
def test_a_refresh_chain_stops_when_the_login_would_have_expired(api, alice, monkeypatch):
    # JWT_REFRESH_DAYS in seconds: the chain refreshes every 0.5 s, well inside each token's lifetime.
    monkeypatch.setattr(RefreshToken, "lifetime", timedelta(seconds=3))
    started = time.monotonic()
    login = api.post("/api/v1/auth/login/", {"username": "alice", "password": PASSWORD}, format="json").json()
    session_end = RefreshToken(login["refresh"])["exp"]
    refresh, answers = login["refresh"], []

    while time.monotonic() - started < 5:
        time.sleep(0.5)
        response = api.post("/api/v1/auth/refresh/", {"refresh": refresh}, format="json")
        answers.append((time.time(), response.status_code))
        if response.status_code == 200:
            refresh = response.json()["refresh"]
            assert AccessToken(response.json()["access"])["exp"] <= session_end

    assert answers[0][1] == 200
    assert all(status == 401 for at, status in answers if at >= session_end), answers
    assert answers[-1][1] == 401


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
