"""Two signups racing for one email or one username, from real threads on PostgreSQL."""

from functools import partial

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from tests.concurrency.harness import run_together

SIGNUP = "/api/v1/auth/signup/"
PASSWORD = "plum-tree-harbour-7"

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    ("field", "first", "second"),
    [
        pytest.param(
            "email",
            {"username": "racer1", "email": "same@example.com"},
            {"username": "racer2", "email": "SAME@example.com"},
            id="same-email",
        ),
        pytest.param(
            "username",
            {"username": "racer", "email": "racer1@example.com"},
            {"username": "RACER", "email": "racer2@example.com"},
            id="same-username-in-different-case",
        ),
    ],
)
def test_two_signups_with_the_same_email_or_username_in_any_case_store_one_user(field, first, second):
    signups = [
        partial(APIClient().post, SIGNUP, {**body, "password": PASSWORD}, format="json") for body in (first, second)
    ]

    responses = run_together(signups, threads=len(signups))

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201, 400], [response.content for response in responses]
    loser = next(response for response in responses if response.status_code == 400)
    assert field in loser.json(), loser.content
    assert User.objects.filter(**{f"{field}__iexact": first[field]}).count() == 1
