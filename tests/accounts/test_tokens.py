"""Login, refresh and logout with JWTs (API.md, Accounts)."""

import pytest
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from tests.api.contract import assert_401
from tests.factories import PASSWORD, access_token

LOGIN = "/api/v1/auth/login/"
REFRESH = "/api/v1/auth/refresh/"
LOGOUT = "/api/v1/auth/logout/"

pytestmark = pytest.mark.django_db


def _login(api, username: str = "alice", password: str = PASSWORD):
    return api.post(LOGIN, {"username": username, "password": password}, format="json")


def _tokens(api, username: str = "alice") -> dict:
    response = _login(api, username)
    assert response.status_code == 200, response.content
    return response.json()


def _refresh(api, refresh: str):
    return api.post(REFRESH, {"refresh": refresh}, format="json")


def _logout(api, user, refresh: str):
    return api.post(LOGOUT, {"refresh": refresh}, format="json", HTTP_AUTHORIZATION=f"Bearer {access_token(user)}")


def _deactivate(user) -> None:
    user.is_active = False
    user.save()


def test_login_answers_200_with_an_access_and_a_refresh_token_for_the_user(api, alice):
    response = _login(api)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access", "refresh"}
    assert AccessToken(body["access"])["user_id"] == str(alice.pk)
    assert RefreshToken(body["refresh"])["user_id"] == str(alice.pk)


def test_login_accepts_the_username_in_another_case(api, alice):
    assert _login(api, username="ALICE").status_code == 200


def test_login_answers_the_same_401_for_an_unknown_user_and_a_wrong_password(api, alice):
    unknown = _login(api, username="mallory")
    wrong = _login(api, password="not-the-password-1")

    assert assert_401(unknown) == assert_401(wrong)


def test_deactivated_user_cannot_log_in(api, alice):
    _deactivate(alice)

    assert_401(_login(api))


@pytest.mark.parametrize("missing", ["username", "password"])
def test_login_without_a_field_answers_400_on_that_field(api, alice, missing):
    data = {"username": "alice", "password": PASSWORD}
    del data[missing]

    response = api.post(LOGIN, data, format="json")

    assert response.status_code == 400
    assert missing in response.json()


def test_login_with_an_unknown_field_answers_400(api, alice):
    response = api.post(LOGIN, {"username": "alice", "password": PASSWORD, "otp": "123456"}, format="json")

    assert response.status_code == 400
    assert "otp" in response.json()


def test_refresh_answers_200_with_a_new_access_and_a_rotated_refresh(api, alice):
    old = _tokens(api)

    response = _refresh(api, old["refresh"])

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"access", "refresh"}
    assert body["refresh"] != old["refresh"]
    assert AccessToken(body["access"])["user_id"] == str(alice.pk)
    assert _refresh(api, body["refresh"]).status_code == 200


def test_refresh_token_stops_working_once_rotated(api, alice):
    old = _tokens(api)
    assert _refresh(api, old["refresh"]).status_code == 200

    assert_401(_refresh(api, old["refresh"]), code="token_not_valid")


def test_deactivated_user_cannot_refresh(api, alice):
    tokens = _tokens(api)
    _deactivate(alice)

    assert_401(_refresh(api, tokens["refresh"]))


def test_deleted_user_cannot_refresh(api, alice):
    tokens = _tokens(api)
    alice.delete()

    assert_401(_refresh(api, tokens["refresh"]))


@pytest.mark.parametrize("token", ["garbage", "a.b.c"])
def test_refresh_with_a_garbage_token_answers_401_token_not_valid(api, db, token):
    assert_401(_refresh(api, token), code="token_not_valid")


def test_refresh_with_an_access_token_answers_401_token_not_valid(api, alice):
    assert_401(_refresh(api, _tokens(api)["access"]), code="token_not_valid")


def test_refresh_without_a_token_answers_400(api, db):
    response = api.post(REFRESH, {}, format="json")

    assert response.status_code == 400
    assert "refresh" in response.json()


def test_logout_answers_204_and_that_refresh_token_never_works_again(api, alice):
    tokens = _tokens(api)

    response = _logout(api, alice, tokens["refresh"])

    assert response.status_code == 204
    assert response.content == b""
    assert_401(_refresh(api, tokens["refresh"]), code="token_not_valid")


def test_logout_twice_with_the_same_refresh_token_keeps_it_revoked(api, alice):
    tokens = _tokens(api)
    assert _logout(api, alice, tokens["refresh"]).status_code == 204

    _logout(api, alice, tokens["refresh"])

    assert_401(_refresh(api, tokens["refresh"]), code="token_not_valid")


def test_logout_without_a_bearer_answers_401_and_revokes_nothing(api, alice):
    tokens = _tokens(api)

    response = api.post(LOGOUT, {"refresh": tokens["refresh"]}, format="json")

    assert_401(response, code="not_authenticated")
    assert _refresh(api, tokens["refresh"]).status_code == 200


def test_logout_without_a_refresh_token_answers_400(api, alice):
    response = api.post(LOGOUT, {}, format="json", HTTP_AUTHORIZATION=f"Bearer {access_token(alice)}")

    assert response.status_code == 400
    assert "refresh" in response.json()


def test_logout_with_a_garbage_refresh_token_answers_401_token_not_valid(api, alice):
    assert_401(_logout(api, alice, "garbage"), code="token_not_valid")


def test_logout_with_another_users_refresh_token_answers_401_and_revokes_nothing(api, alice, bob):
    bobs = _tokens(api, "bob")

    assert_401(_logout(api, alice, bobs["refresh"]))

    assert _refresh(api, bobs["refresh"]).status_code == 200
