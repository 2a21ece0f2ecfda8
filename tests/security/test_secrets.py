"""Passwords, password hashes and tokens never leak into responses, headers or logs."""

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from accounts.models import User
from tests.servers import GunicornServer

PASSWORD = "amber-falcon-quarry-58"
WRONG_PASSWORD = "amber-falcon-quarry-59"
LOGGERS = ("django", "django.request", "django.server", "django_guid", "fastticket", "redis_lock")


@dataclass
class Exchange:
    step: str
    status: int
    headers: str
    body: str


Send = Callable[..., Exchange]


def _account_flow(send: Send) -> tuple[list[Exchange], dict[str, str]]:
    """Sign up, fail a login, log in, read me, refresh, log out, refresh again; return what was seen."""
    exchanges = [
        send(
            "signup",
            "POST",
            "/api/v1/auth/signup/",
            {"username": "dora", "email": "dora@example.com", "password": PASSWORD},
        ),
        send("failed login", "POST", "/api/v1/auth/login/", {"username": "dora", "password": WRONG_PASSWORD}),
        send("login", "POST", "/api/v1/auth/login/", {"username": "dora", "password": PASSWORD}),
    ]
    tokens = json.loads(exchanges[-1].body)
    exchanges.append(send("me", "GET", "/api/v1/auth/me/", token=tokens["access"]))
    exchanges.append(send("refresh", "POST", "/api/v1/auth/refresh/", {"refresh": tokens["refresh"]}))
    rotated = json.loads(exchanges[-1].body)
    exchanges.append(
        send("logout", "POST", "/api/v1/auth/logout/", {"refresh": rotated["refresh"]}, token=rotated["access"])
    )
    exchanges.append(send("refresh after logout", "POST", "/api/v1/auth/refresh/", {"refresh": rotated["refresh"]}))
    assert [exchange.status for exchange in exchanges] == [201, 401, 200, 200, 200, 204, 401], exchanges

    password_hash = User.objects.get(username="dora").password
    secrets = {
        "password": PASSWORD,
        "wrong password": WRONG_PASSWORD,
        "password hash": password_hash,
        "password hash digest": password_hash.rsplit("$", 1)[-1],
        "access token": tokens["access"],
        "refresh token": tokens["refresh"],
        "rotated access token": rotated["access"],
        "rotated refresh token": rotated["refresh"],
    }
    return exchanges, secrets


# The one place each token may appear: the body of the answer that issues it.
ISSUED_BY = {
    "access token": "login",
    "refresh token": "login",
    "rotated access token": "refresh",
    "rotated refresh token": "refresh",
}


def _assert_no_leak(exchanges: list[Exchange], secrets: dict[str, str], log: str) -> None:
    for name, secret in secrets.items():
        assert secret not in log, f"the {name} is in the log"
        for exchange in exchanges:
            assert secret not in exchange.headers, f"the {name} is in a header of {exchange.step}"
            if ISSUED_BY.get(name) != exchange.step:
                assert secret not in exchange.body, f"the {name} is in the body of {exchange.step}"


@pytest.fixture
def all_logs(caplog):
    """Capture every record at every level, also from the loggers that do not propagate to the root."""
    caplog.set_level(logging.DEBUG)
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
        logging.getLogger(name).addHandler(caplog.handler)
    yield caplog
    for name in LOGGERS:
        logging.getLogger(name).removeHandler(caplog.handler)


def test_no_secret_leaks_in_process(api, db, all_logs):
    def send(step, method, path, body=None, token=None):
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
        response = getattr(api, method.lower())(path, body, format="json", **headers)
        header_text = "\n".join(f"{name}: {value}" for name, value in response.headers.items())
        return Exchange(step, response.status_code, header_text, response.content.decode())

    exchanges, secrets = _account_flow(send)

    log = all_logs.text + "\n".join(repr(record.__dict__) for record in all_logs.records)
    assert "Unauthorized" in log  # the failed login was logged, so the log was captured
    _assert_no_leak(exchanges, secrets, log)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_no_secret_leaks_under_gunicorn(tmp_path):
    with GunicornServer(log_path=tmp_path / "gunicorn.log", DJANGO_LOG_LEVEL="DEBUG") as server:

        def send(step, method, path, body=None, token=None):
            reply = server.request(method, path, json_body=body, token=token)
            return Exchange(step, reply.status, str(reply.headers), reply.body.decode())

        exchanges, secrets = _account_flow(send)
    log = server.log()

    assert "/api/v1/auth/logout/" in log  # the access log was captured
    _assert_no_leak(exchanges, secrets, log)
