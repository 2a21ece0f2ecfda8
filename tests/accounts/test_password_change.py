"""A password change ends the user's sessions (API.md, Accounts): by the user, by staff, anywhere."""

import pytest
from django.contrib.auth.management.commands import changepassword
from django.core.management import call_command
from django.test import Client, override_settings
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.authentication import clear_user_cache
from accounts.models import User
from tests.api.contract import assert_401
from tests.factories import PASSWORD, access_token, make_user

LOGIN = "/api/v1/auth/login/"
REFRESH = "/api/v1/auth/refresh/"
ME = "/api/v1/auth/me/"
PASSWORD_CHANGE = "/api/v1/auth/password/"
NEW_PASSWORD = "violet-kettle-orbit-58"

pytestmark = pytest.mark.django_db


def _login(username: str = "alice", password: str = PASSWORD) -> dict:
    response = APIClient().post(LOGIN, {"username": username, "password": password}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def _refresh(refresh: str):
    return APIClient().post(REFRESH, {"refresh": refresh}, format="json")


def _me(access: str):
    return APIClient().get(ME, HTTP_AUTHORIZATION=f"Bearer {access}")


def _change(access: str, old_password: str = PASSWORD, new_password: str = NEW_PASSWORD):
    return APIClient().post(
        PASSWORD_CHANGE,
        {"old_password": old_password, "new_password": new_password},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {access}",
    )


def _assert_revoked(tokens: dict) -> None:
    # Another worker trusts its cached user for up to AUTH_USER_CACHE_SECONDS: empty this one's as
    # that time passing would, so the access token is checked against the changed user.
    clear_user_cache()
    assert_401(_refresh(tokens["refresh"]))
    assert_401(_me(tokens["access"]))


def test_changing_the_password_answers_204_and_the_new_password_logs_in(alice):
    tokens = _login()

    response = _change(tokens["access"])

    assert response.status_code == 204, response.content
    assert response.content == b""
    assert _login(password=NEW_PASSWORD)
    assert APIClient().post(LOGIN, {"username": "alice", "password": PASSWORD}, format="json").status_code == 401


def test_changing_the_password_revokes_every_refresh_and_access_token_of_the_user(alice):
    phone, laptop = _login(), _login()

    assert _change(phone["access"]).status_code == 204

    _assert_revoked(phone)
    _assert_revoked(laptop)


def test_the_access_token_that_changed_the_password_stops_at_once_in_that_worker(alice):
    tokens = _login()
    assert _me(tokens["access"]).status_code == 200  # now cached in this process

    assert _change(tokens["access"]).status_code == 204

    assert_401(_me(tokens["access"]))


def test_a_password_change_leaves_other_users_tokens_alone(alice, bob):
    alice_tokens, bob_tokens = _login("alice"), _login("bob")

    assert _change(alice_tokens["access"]).status_code == 204
    clear_user_cache()

    assert _me(bob_tokens["access"]).status_code == 200
    assert _refresh(bob_tokens["refresh"]).status_code == 200


def test_tokens_from_a_login_after_the_change_work(alice):
    assert _change(_login()["access"]).status_code == 204

    tokens = _login(password=NEW_PASSWORD)

    assert _me(tokens["access"]).status_code == 200
    assert _refresh(tokens["refresh"]).status_code == 200


def test_a_wrong_old_password_answers_400_on_old_password_and_changes_nothing(alice):
    tokens = _login()

    response = _change(tokens["access"], old_password="not-the-password-1")

    assert response.status_code == 400
    assert set(response.json()) == {"old_password"}
    assert _login()  # the old password still works
    assert _refresh(tokens["refresh"]).status_code == 200


@pytest.mark.parametrize("new_password", ["short1", "12345678901", "password123", "alice1234"])
def test_a_new_password_the_validators_refuse_answers_400_on_new_password(alice, new_password):
    tokens = _login()

    response = _change(tokens["access"], new_password=new_password)

    assert response.status_code == 400
    assert set(response.json()) == {"new_password"}
    assert _refresh(tokens["refresh"]).status_code == 200


@pytest.mark.parametrize("missing", ["old_password", "new_password"])
def test_a_missing_field_answers_400_on_that_field(alice, missing):
    body = {"old_password": PASSWORD, "new_password": NEW_PASSWORD}
    del body[missing]

    response = APIClient().post(PASSWORD_CHANGE, body, format="json", HTTP_AUTHORIZATION=f"Bearer {_login()['access']}")

    assert response.status_code == 400
    assert missing in response.json()


def test_changing_the_password_needs_a_bearer_token(api, alice):
    assert_401(api.post(PASSWORD_CHANGE, {"old_password": PASSWORD, "new_password": NEW_PASSWORD}, format="json"))


def test_the_old_password_is_checked_against_the_stored_one_not_a_cached_user(alice):
    # Staff reset the password; a worker still trusts its cached alice with the old hash.
    tokens = _login()
    assert _me(tokens["access"]).status_code == 200
    stored = User.objects.get(pk=alice.pk)
    stored.set_password("staff-chosen-secret-77")
    User.objects.filter(pk=alice.pk).update(password=stored.password)  # no signal: the cache keeps the old hash

    response = _change(tokens["access"])

    assert response.status_code == 400
    assert _login(password="staff-chosen-secret-77")


@pytest.fixture
def admin_client(db) -> Client:
    admin = make_user("root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin)
    return client


def test_a_password_set_by_staff_in_the_admin_revokes_the_users_tokens(admin_client, alice):
    tokens = _login()

    response = admin_client.post(
        f"/admin/accounts/user/{alice.pk}/password/",
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    _assert_revoked(tokens)
    assert _login(password=NEW_PASSWORD)


def test_disabling_password_login_in_the_admin_revokes_the_users_tokens(admin_client, alice):
    tokens = _login()

    response = admin_client.post(
        f"/admin/accounts/user/{alice.pk}/password/", {"usable_password": "false", "unset-password": "1"}
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    assert not User.objects.get(pk=alice.pk).has_usable_password()
    _assert_revoked(tokens)


def test_manage_py_changepassword_revokes_the_users_tokens(alice, monkeypatch):
    tokens = _login()
    monkeypatch.setattr(changepassword.getpass, "getpass", lambda prompt="": NEW_PASSWORD)

    call_command("changepassword", "alice", stdout=None)

    _assert_revoked(tokens)


@pytest.mark.parametrize("update_fields", [None, ["password"]])
def test_set_password_then_save_anywhere_revokes_the_users_tokens(alice, update_fields):
    tokens = _login()
    user = User.objects.get(pk=alice.pk)

    user.set_password(NEW_PASSWORD)
    user.save(update_fields=update_fields)

    _assert_revoked(tokens)


def test_saving_the_user_without_a_new_password_keeps_the_tokens(alice):
    tokens = _login()
    user = User.objects.get(pk=alice.pk)

    user.first_name = "Alice"
    user.save()
    clear_user_cache()

    assert _me(tokens["access"]).status_code == 200
    assert _refresh(tokens["refresh"]).status_code == 200


def test_a_password_hash_upgrade_at_login_is_not_a_password_change(db):
    # Hashed with the second hasher, so the next login re-hashes it with the first (Django's upgrade).
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.PBKDF2PasswordHasher"]):
        carol = make_user("carol")
    before = {"access": access_token(carol), "refresh": str(RefreshToken.for_user(carol))}

    after = _login("carol")

    assert User.objects.get(username="carol").password.startswith("md5$")
    clear_user_cache()
    assert _me(before["access"]).status_code == 200
    assert _refresh(before["refresh"]).status_code == 200
    assert _refresh(after["refresh"]).status_code == 200
