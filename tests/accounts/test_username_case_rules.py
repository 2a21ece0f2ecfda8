"""Usernames and emails are unique under the same case rule that login's lookup uses."""

import pytest
from django.db import IntegrityError, transaction

from accounts.models import User
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

DOTLESS = "\u0131van"  # a dotless i: upper-cases like "ivan", lower-cases differently


def test_signup_refuses_a_username_that_matches_another_ignoring_case_with_a_dotless_i(api):
    api.post("/api/v1/auth/signup/", {"username": "ivan", "email": "ivan@example.com", "password": PASSWORD})

    response = api.post(
        "/api/v1/auth/signup/", {"username": DOTLESS, "email": "other@example.com", "password": PASSWORD}
    )

    assert response.status_code == 400
    assert "username" in response.json()
    assert User.objects.filter(username__iexact="ivan").count() == 1


def test_database_refuses_two_usernames_equal_ignoring_case_as_login_compares_them():
    User.objects.create(username="ivan", email="ivan@example.com")
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(username=DOTLESS, email="other@example.com")


def test_login_with_a_username_that_matches_one_user_ignoring_case_answers_200(api):
    user = User(username="Ivan", email="ivan@example.com")
    user.set_password(PASSWORD)
    user.save()

    response = api.post("/api/v1/auth/login/", {"username": "IVAN", "password": PASSWORD})

    assert response.status_code == 200
