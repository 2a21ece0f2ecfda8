"""Two signups racing for one email or one username, from real threads on PostgreSQL."""

import threading

import pytest
from django.db import connections
from rest_framework.test import APIClient

from accounts.models import User

SIGNUP = "/api/v1/auth/signup/"
PASSWORD = "plum-tree-harbour-7"

pytestmark = pytest.mark.django_db(transaction=True)


def _race(bodies: list[dict]) -> list:
    """Post each body from its own thread, all released at once; return the responses in order."""
    barrier = threading.Barrier(len(bodies))
    responses: list = [None] * len(bodies)

    def run(index: int) -> None:
        try:
            client = APIClient()
            barrier.wait(timeout=30)
            responses[index] = client.post(SIGNUP, bodies[index], format="json")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(response is not None for response in responses), "a racer did not answer"
    return responses


def _assert_one_winner(responses: list, field: str) -> None:
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201, 400], [response.content for response in responses]
    loser = next(response for response in responses if response.status_code == 400)
    assert field in loser.json(), loser.content


def test_two_signups_with_the_same_email_store_one_user():
    bodies = [
        {"username": "racer1", "email": "same@example.com", "password": PASSWORD},
        {"username": "racer2", "email": "SAME@example.com", "password": PASSWORD},
    ]

    responses = _race(bodies)

    _assert_one_winner(responses, "email")
    assert User.objects.filter(email__iexact="same@example.com").count() == 1


def test_two_signups_with_the_same_username_in_different_case_store_one_user():
    bodies = [
        {"username": "racer", "email": "racer1@example.com", "password": PASSWORD},
        {"username": "RACER", "email": "racer2@example.com", "password": PASSWORD},
    ]

    responses = _race(bodies)

    _assert_one_winner(responses, "username")
    assert User.objects.filter(username__iexact="racer").count() == 1
