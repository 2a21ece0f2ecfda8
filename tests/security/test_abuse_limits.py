"""Abuse limits: per-IP, per-username and per-user throttles, the body size limit, login timing."""

import statistics
import time

import pytest
from django.conf import settings
from django.test import override_settings

from fastticket import settings as fastticket_settings
from tests.factories import make_ticket, make_user

SIGNUP = "/api/v1/auth/signup/"
LOGIN = "/api/v1/auth/login/"
TICKETS = "/api/v1/tickets/"
IP = "198.51.100.7"
OTHER_IP = "198.51.100.8"


def _signup(api, n: int, ip: str = IP, **extra):
    body = {"username": f"newcomer{n}", "email": f"newcomer{n}@example.com", "password": "quiet-harbour-lantern-7"}
    return api.post(SIGNUP, body, format="json", REMOTE_ADDR=ip, **extra)


def _login(api, username: str, ip: str = IP, **extra):
    body = {"username": username, "password": "not-the-password-1"}
    return api.post(LOGIN, body, format="json", REMOTE_ADDR=ip, **extra)


def _assert_throttled(response) -> None:
    assert response.status_code == 429, response.content
    assert int(response["Retry-After"]) >= 1
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["detail"]


def test_signup_is_throttled_per_ip(api, db, throttle_rates):
    throttle_rates(auth="2/min")

    assert [_signup(api, n).status_code for n in range(2)] == [201, 201]
    _assert_throttled(_signup(api, 2))
    assert _signup(api, 3, ip=OTHER_IP).status_code == 201


def test_login_is_throttled_per_ip(api, db, throttle_rates):
    throttle_rates(auth="2/min")

    assert [_login(api, f"stranger{n}").status_code for n in range(2)] == [401, 401]
    _assert_throttled(_login(api, "stranger2"))
    assert _login(api, "stranger3", ip=OTHER_IP).status_code == 401


def test_login_is_throttled_per_username_whatever_the_ip_and_case(api, alice, throttle_rates):
    throttle_rates(auth="2/min")

    assert [_login(api, "alice", ip=f"203.0.113.{n}").status_code for n in (1, 2)] == [401, 401]
    _assert_throttled(_login(api, "ALICE", ip="203.0.113.3"))
    assert _login(api, "bob", ip="203.0.113.4").status_code == 401


def test_booking_is_throttled_per_user(alice_api, bob_api, throttle_rates):
    throttle_rates(booking="2/min")
    first, second, third = (make_ticket(title=f"Show {n}") for n in range(3))

    assert alice_api.post(f"{TICKETS}{first.pk}/reserve/").status_code == 201
    assert alice_api.post(f"{TICKETS}{second.pk}/reserve/").status_code == 201
    throttled = alice_api.post(f"{TICKETS}{third.pk}/reserve/")
    _assert_throttled(throttled)
    third.refresh_from_db()
    assert third.issued_count == 0
    assert bob_api.post(f"{TICKETS}{third.pk}/reserve/").status_code == 201


def test_anonymous_reads_are_throttled_per_ip(api, db, throttle_rates):
    throttle_rates(anon="2/min")

    assert [api.get(TICKETS, REMOTE_ADDR=IP).status_code for _ in range(2)] == [200, 200]
    _assert_throttled(api.get(TICKETS, REMOTE_ADDR=IP))
    assert api.get(TICKETS, REMOTE_ADDR=OTHER_IP).status_code == 200


def test_the_user_throttle_leaves_anonymous_callers_to_the_anon_throttle(api, db, throttle_rates):
    throttle_rates(anon=None, user="2/min")

    assert 429 not in [api.get(TICKETS, REMOTE_ADDR=IP).status_code for _ in range(5)]


@pytest.mark.parametrize("value", ["off", "OFF", "none", ""])
def test_a_throttle_variable_set_to_off_disables_that_scope(monkeypatch, value):
    monkeypatch.setenv("THROTTLE_AUTH", value)

    assert fastticket_settings._rate("THROTTLE_AUTH", "20/min") is None


@pytest.mark.parametrize("scope", ["anon", "auth", "booking"])
def test_a_scope_whose_rate_is_off_never_answers_429(api, alice_api, scope, throttle_rates):
    # Only the scope under test is off; the others that a request of its kind meets stay low.
    throttle_rates(**{name: "2/min" for name in ("anon", "auth", "booking") if name != scope})
    tickets = [make_ticket(title=f"Show {n}") for n in range(5)]
    attempts = {
        "anon": lambda n: api.get(TICKETS, REMOTE_ADDR=IP),
        "auth": lambda n: _login(api, "alice"),
        "booking": lambda n: alice_api.post(f"{TICKETS}{tickets[n].pk}/reserve/"),
    }[scope]

    assert 429 not in [attempts(n).status_code for n in range(5)]


def test_a_forged_x_forwarded_for_does_not_escape_the_ip_throttle(api, db, throttle_rates):
    throttle_rates(auth="2/min")

    replies = [_signup(api, n, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}") for n in range(3)]

    assert [reply.status_code for reply in replies[:2]] == [201, 201]
    _assert_throttled(replies[2])


def test_body_over_the_size_limit_answers_413_json_before_anything_is_stored(alice_api):
    ticket = make_ticket()
    oversized = b'{"padding": "' + b"x" * settings.API_MAX_BODY_BYTES + b'"}'

    response = alice_api.post(f"{TICKETS}{ticket.pk}/reserve/", oversized, content_type="application/json")

    assert response.status_code == 413
    assert response.json()["detail"]
    ticket.refresh_from_db()
    assert ticket.issued_count == 0


@override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.PBKDF2PasswordHasher"])
def test_login_for_an_unknown_user_costs_about_as_much_as_a_wrong_password(api, db):
    make_user("carol")  # hashed with PBKDF2, like every real account
    timings: dict[str, list[float]] = {"carol": [], "nobody-here": []}
    answers = set()
    for _ in range(5):
        for username, samples in timings.items():
            started = time.perf_counter()
            response = _login(api, username)
            samples.append(time.perf_counter() - started)
            answers.add((response.status_code, response.content))

    assert len(answers) == 1, answers
    assert next(iter(answers))[0] == 401
    # A generous bound: only a skipped hash (ten times cheaper or more) would fall outside it.
    ratio = statistics.median(timings["nobody-here"]) / statistics.median(timings["carol"])
    assert 0.5 <= ratio <= 2, timings


def test_password_changes_are_throttled_per_user_whatever_the_ip(alice_api, bob_api, throttle_rates):
    # A stolen access token must not guess at the old password quickly.
    throttle_rates(auth="2/min")
    body = {"old_password": "not-the-password-1", "new_password": "violet-kettle-orbit-58"}

    def change(client, n: int):
        return client.post("/api/v1/auth/password/", body, format="json", REMOTE_ADDR=f"203.0.113.{n}")

    assert [change(alice_api, n).status_code for n in (1, 2)] == [400, 400]
    _assert_throttled(change(alice_api, 3))
    assert change(bob_api, 4).status_code == 400
