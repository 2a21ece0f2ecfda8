"""The account flow over real HTTP against gunicorn with 4 worker processes (API.md, Accounts)."""

import pytest

from tests.servers import GunicornServer

pytestmark = pytest.mark.slow

WORKERS = 4
PASSWORD = "plum-tree-harbour-7"


@pytest.fixture
def server(transactional_db, tmp_path):
    # transactional_db: the workers commit for real, and the test database is emptied afterwards
    # (after this fixture has stopped the server, since it was set up first).
    with GunicornServer(
        log_path=tmp_path / "gunicorn.log",
        workers=WORKERS,
        # The flow sends more auth requests than a production rate allows a minute.
        THROTTLE_AUTH="off",
    ) as running:
        yield running


def _assert_token_not_valid(reply) -> None:
    assert reply.status == 401, reply.body
    body = reply.json()
    assert set(body) == {"detail", "code"}
    assert body["code"] == "token_not_valid"


def test_signup_login_me_refresh_logout_flow_over_http(server):
    signup = server.request(
        "POST",
        "/api/v1/auth/signup/",
        json_body={"username": "dora", "email": "dora@example.com", "password": PASSWORD},
    )
    assert signup.status == 201, signup.body
    user = signup.json()
    assert set(user) == {"id", "username", "email", "is_staff", "created_at"}

    login = server.request("POST", "/api/v1/auth/login/", json_body={"username": "DORA", "password": PASSWORD})
    assert login.status == 200, login.body
    first = login.json()
    assert set(first) == {"access", "refresh"}

    me = server.request("GET", "/api/v1/auth/me/", token=first["access"])
    assert me.status == 200, me.body
    assert me.json() == user
    anonymous = server.request("GET", "/api/v1/auth/me/")
    assert anonymous.status == 401, anonymous.body
    assert anonymous.headers["Content-Type"] == "application/json"
    assert anonymous.json()["code"] == "not_authenticated"

    refresh = server.request("POST", "/api/v1/auth/refresh/", json_body={"refresh": first["refresh"]})
    assert refresh.status == 200, refresh.body
    second = refresh.json()
    assert set(second) == {"access", "refresh"}
    assert second["refresh"] != first["refresh"]

    logout = server.request(
        "POST", "/api/v1/auth/logout/", json_body={"refresh": second["refresh"]}, token=second["access"]
    )
    assert logout.status == 204, logout.body
    assert logout.body == b""

    # Each request is a new connection, so these land on several of the workers.
    for _ in range(WORKERS * 2):
        _assert_token_not_valid(
            server.request("POST", "/api/v1/auth/refresh/", json_body={"refresh": second["refresh"]})
        )
        _assert_token_not_valid(
            server.request("POST", "/api/v1/auth/refresh/", json_body={"refresh": first["refresh"]})
        )
