"""GET /api/v1/auth/me/ and what makes an access token stop working (API.md, Accounts)."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts.models import User
from tests.api.contract import assert_401

ME = "/api/v1/auth/me/"
USER_FIELDS = {"id", "username", "email", "is_staff", "created_at"}

pytestmark = pytest.mark.django_db


def _me(api, token: str | None = None):
    headers = {} if token is None else {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    return api.get(ME, **headers)


def _expired_access_token(user) -> str:
    token = AccessToken.for_user(user)
    token.set_exp(from_time=timezone.now() - timedelta(hours=1), lifetime=timedelta(minutes=15))
    return str(token)


def test_me_answers_200_with_the_caller_and_no_password(alice_api, alice):
    response = alice_api.get(ME)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == USER_FIELDS
    assert (body["id"], body["username"], body["email"], body["is_staff"]) == (
        str(alice.pk),
        "alice",
        "alice@example.com",
        False,
    )
    assert "password" not in response.content.decode()


def test_me_shows_is_staff_for_staff(staff_api):
    assert staff_api.get(ME).json()["is_staff"] is True


def test_me_without_a_token_answers_401_not_authenticated(api):
    assert_401(_me(api), code="not_authenticated")


@pytest.mark.parametrize("token", ["garbage", "a.b.c", ""])
def test_me_with_a_bad_token_answers_401(api, token):
    assert_401(_me(api, token))


def test_me_with_a_token_signed_by_another_key_answers_401_token_not_valid(api, alice):
    forged = TokenBackend("HS256", signing_key="another-secret-key-0123456789abcdef").encode(
        {**AccessToken.for_user(alice).payload}
    )

    assert_401(_me(api, forged), code="token_not_valid")


def test_me_with_an_expired_token_answers_401_token_not_valid(api, alice):
    token = _expired_access_token(alice)

    assert_401(_me(api, token), code="token_not_valid")


def test_me_with_a_refresh_token_answers_401_token_not_valid(api, alice):
    assert_401(_me(api, str(RefreshToken.for_user(alice))), code="token_not_valid")


def test_deactivated_users_access_token_stops_working(alice_api, alice):
    assert alice_api.get(ME).status_code == 200, "control: the token works and the user is now cached"

    alice.is_active = False
    alice.save()

    assert_401(alice_api.get(ME))


def test_deleted_users_access_token_answers_401(alice_api, alice):
    assert alice_api.get(ME).status_code == 200

    alice.delete()

    assert_401(alice_api.get(ME))


def test_auth_user_cache_stays_within_the_60_seconds_api_md_allows(settings):
    assert 0 <= settings.AUTH_USER_CACHE_SECONDS <= 60


def test_deactivation_saved_elsewhere_reaches_access_tokens_once_the_user_cache_expires(alice_api, alice, settings):
    settings.AUTH_USER_CACHE_SECONDS = 1
    assert alice_api.get(ME).status_code == 200

    # An update() sends no signal, as a save in another process reaches this one with none.
    User.objects.filter(pk=alice.pk).update(is_active=False)
    time.sleep(1.2)

    assert_401(alice_api.get(ME))


def test_the_user_answer_is_what_the_model_serializer_s_fields_render(alice):
    """UserSerializer renders by hand for speed; its declared fields stay the source of truth."""
    from rest_framework import serializers

    from accounts.serializers import UserSerializer

    fields = UserSerializer().fields
    by_fields = serializers.ModelSerializer.to_representation(UserSerializer(), alice)

    assert set(fields) == set(by_fields)
    assert UserSerializer(alice).data == by_fields
