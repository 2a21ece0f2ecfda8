"""The per-process cache of verified access tokens (accounts.authentication.CachedJWTAuthentication).

A token is verified once and kept, by its whole raw text, until its `exp`. What the cache must never
do: keep a token working past its expiry, answer for a different token that shares part of the text
or the user, or stand in for the account checks of each request. The account's own refusals
(deactivated, password changed, deleted, with the token cached) are in test_me.py and
test_password_change.py; these are the cases where the cache itself could be what lets a token in.
"""

import time
from datetime import timedelta

import pytest
from django.db.models import F
from rest_framework.test import APIClient
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts import authentication
from accounts.models import User
from tests.api.contract import assert_401
from tests.factories import access_token, make_ticket

ME = "/api/v1/auth/me/"

pytestmark = pytest.mark.django_db


def _me(token: str):
    return APIClient().get(ME, HTTP_AUTHORIZATION=f"Bearer {token}")


def _assert_cached() -> None:
    """Control: this process now keeps one verified token (the test's), so the test covers the cache."""
    assert len(authentication._tokens) == 1, "no token was cached: the test would not cover the cache"


def test_a_cached_token_stops_working_when_it_expires(alice):
    token = AccessToken.for_user(alice)
    token.set_exp(lifetime=timedelta(seconds=2))
    raw = str(token)
    assert _me(raw).status_code == 200
    _assert_cached()
    assert _me(raw).status_code == 200, "control: a hit while the token is valid"

    time.sleep(max(0.0, token["exp"] - time.time()) + 0.1)

    assert_401(_me(raw), code="token_not_valid")


def _with_signature_char_changed(token: str) -> str:
    # The first character of the signature: its 6 bits are all signature bits, where a last
    # character may differ only in padding bits, which some base64 decoders ignore.
    head, payload, signature = token.split(".")
    replaced = "A" if signature[0] != "A" else "B"
    return f"{head}.{payload}.{replaced}{signature[1:]}"


def test_a_token_with_one_character_of_its_signature_changed_is_refused_after_the_genuine_one_was_cached(alice):
    genuine = access_token(alice)
    assert _me(genuine).status_code == 200
    _assert_cached()

    assert_401(_me(_with_signature_char_changed(genuine)), code="token_not_valid")
    assert _me(genuine).status_code == 200


def test_the_genuine_claims_signed_by_another_key_are_refused_after_the_genuine_token_was_cached(alice):
    token = AccessToken.for_user(alice)
    genuine = str(token)
    forged = TokenBackend("HS256", signing_key="another-secret-key-0123456789abcdef").encode({**token.payload})
    assert forged.rsplit(".", 1)[0] == genuine.rsplit(".", 1)[0], "control: only the signatures differ"
    assert _me(genuine).status_code == 200
    _assert_cached()

    assert_401(_me(forged), code="token_not_valid")


def test_a_refresh_token_as_a_bearer_token_is_refused_after_the_users_access_token_was_cached(alice):
    refresh = RefreshToken.for_user(alice)
    access = str(refresh.access_token)
    assert _me(access).status_code == 200
    _assert_cached()

    assert_401(_me(str(refresh)), code="token_not_valid")
    assert _me(access).status_code == 200


def test_a_cached_token_is_refused_once_a_password_change_made_elsewhere_reaches_the_user_cache(alice, settings):
    # test_password_change.py empties both caches before it checks; here the token stays cached
    # for its 15 minutes while the user entry lapses after AUTH_USER_CACHE_SECONDS.
    settings.AUTH_USER_CACHE_SECONDS = 1
    token = access_token(alice)
    assert _me(token).status_code == 200
    _assert_cached()

    # An update() sends no signal, as a change in another process reaches this one with none.
    User.objects.filter(pk=alice.pk).update(password_version=F("password_version") + 1)
    time.sleep(1.2)

    body = assert_401(_me(token), code="token_not_valid")
    assert "password" in body["detail"]
    _assert_cached()


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"is_active": False}, "authentication_failed"),
        ({"password_version": F("password_version") + 1}, "token_not_valid"),
    ],
    ids=["deactivated", "password_changed"],
)
def test_reserve_refuses_a_cached_token_and_user_whose_account_changed_elsewhere(alice, change, code):
    """Booking names its caller by the cached token and user, and checks the account as its statement reads it."""
    ticket = make_ticket()
    token = access_token(alice)
    assert _me(token).status_code == 200  # the token and the user are now cached
    _assert_cached()

    User.objects.filter(pk=alice.pk).update(**change)  # no signal: the cached user is still the old one
    response = APIClient().post(f"/api/v1/tickets/{ticket.pk}/reserve/", HTTP_AUTHORIZATION=f"Bearer {token}")

    assert_401(response, code=code)
    assert not ticket.reservations.exists()
