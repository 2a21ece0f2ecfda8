"""The HTML login forms (/admin/login/, /api-auth/login/) are limited as the API login is (THROTTLE_AUTH)."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.factories import PASSWORD, make_user

ADMIN_LOGIN = "/admin/login/"
API_AUTH_LOGIN = "/api-auth/login/"
API_LOGIN = "/api/v1/auth/login/"
FORMS = [ADMIN_LOGIN, API_AUTH_LOGIN]
IP = "198.51.100.7"
WRONG = "not-the-password-1"

pytestmark = pytest.mark.django_db


def _form_login(path: str, username: str, password: str = WRONG, ip: str = IP):
    return Client().post(path, {"username": username, "password": password}, REMOTE_ADDR=ip)


def _api_login(username: str, password: str = WRONG, ip: str = IP):
    return APIClient().post(API_LOGIN, {"username": username, "password": password}, format="json", REMOTE_ADDR=ip)


def _assert_throttled_page(response) -> None:
    assert response.status_code == 429, response.content
    assert int(response["Retry-After"]) >= 1
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("path", FORMS)
def test_a_login_form_is_throttled_per_address(path, alice, throttle_rates):
    throttle_rates(auth="2/min")

    assert [_form_login(path, f"stranger{n}").status_code for n in range(2)] == [200, 200]
    _assert_throttled_page(_form_login(path, "stranger2"))
    assert _form_login(path, "stranger3", ip="198.51.100.8").status_code == 200


@pytest.mark.parametrize("path", FORMS)
def test_a_login_form_is_throttled_per_username_whatever_the_address(path, alice, throttle_rates):
    throttle_rates(auth="2/min")

    assert [_form_login(path, "alice", ip=f"203.0.113.{n}").status_code for n in (1, 2)] == [200, 200]
    _assert_throttled_page(_form_login(path, "ALICE", ip="203.0.113.3"))
    assert _form_login(path, "bob", ip="203.0.113.4").status_code == 200


@pytest.mark.parametrize("path", FORMS)
def test_a_throttled_login_form_does_not_log_in_even_with_the_right_password(path, alice, throttle_rates):
    throttle_rates(auth="1/min")
    _form_login(path, "alice")

    response = _form_login(path, "alice", password=PASSWORD, ip="203.0.113.9")

    _assert_throttled_page(response)
    assert "sessionid" not in response.cookies


def test_the_forms_and_the_api_login_share_one_budget_per_username(alice, throttle_rates):
    # Three doors to one account must not give three times the guesses.
    throttle_rates(auth="3/min")

    assert _api_login("alice", ip="203.0.113.1").status_code == 401
    assert _form_login(ADMIN_LOGIN, "alice", ip="203.0.113.2").status_code == 200
    assert _form_login(API_AUTH_LOGIN, "alice", ip="203.0.113.3").status_code == 200
    assert _api_login("alice", ip="203.0.113.4").status_code == 429
    _assert_throttled_page(_form_login(ADMIN_LOGIN, "alice", ip="203.0.113.5"))


def test_a_login_form_still_logs_in_under_the_limit(alice, throttle_rates):
    throttle_rates(auth="5/min")
    browser = Client()

    response = browser.post(API_AUTH_LOGIN, {"username": "alice", "password": PASSWORD}, REMOTE_ADDR=IP)

    assert response.status_code == 302
    assert browser.get("/api/v1/auth/me/", HTTP_ACCEPT="application/json").json()["username"] == "alice"


@pytest.mark.parametrize(
    ("account", "spelling"),
    [
        ("sid", "\u017fid"),  # long s: PostgreSQL's UPPER() makes it S
        ("ivan", "\u0131van"),  # dotless i: UPPER() makes it I
        ("kate", "\u212aate"),  # Kelvin sign: NFKC makes it K
        ("max", "\uff4d\uff41\uff58"),  # fullwidth letters: NFKC makes them ASCII
    ],
)
@pytest.mark.parametrize("door", ["api", "form"])
def test_the_per_username_limit_counts_every_spelling_of_one_account_together(account, spelling, door, throttle_rates):
    make_user(account)
    throttle_rates(auth="2/min")
    attempt = _api_login if door == "api" else lambda name, ip: _form_login(ADMIN_LOGIN, name, ip=ip)

    attempt(account, ip="203.0.113.1")
    attempt(account.upper(), ip="203.0.113.2")
    response = attempt(spelling, ip="203.0.113.3")

    assert response.status_code == 429, response.content


def test_a_look_alike_spelling_logs_in_to_the_account_it_folds_to(alice):
    make_user("kate")

    assert _api_login("\u212aate", password=PASSWORD).status_code == 200


def test_the_browsable_api_login_without_next_lands_on_the_docs(alice):
    response = _form_login(API_AUTH_LOGIN, "alice", password=PASSWORD)

    assert response.status_code == 302
    assert response["Location"] == "/api/docs/"


def test_the_browsable_api_login_with_an_unsafe_next_lands_on_the_docs(alice):
    response = Client().post(
        API_AUTH_LOGIN + "?next=https://evil.example/", {"username": "alice", "password": PASSWORD}
    )

    assert response.status_code == 302
    assert response["Location"] == "/api/docs/"


def test_the_browsable_api_login_follows_a_safe_next(alice):
    response = Client().post(API_AUTH_LOGIN + "?next=/api/v1/auth/me/", {"username": "alice", "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == "/api/v1/auth/me/"
