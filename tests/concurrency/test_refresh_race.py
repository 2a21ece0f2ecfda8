"""One refresh token sent twice at the same moment rotates once (API.md: the old one stops working)."""

import contextlib
import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import BlacklistMixin

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


def test_one_refresh_token_sent_twice_at_once_gives_one_new_pair(alice, monkeypatch):
    refresh = APIClient().post("/api/v1/auth/login/", {"username": "alice", "password": PASSWORD}).json()["refresh"]
    # Widen the race: each refresh that got past the blacklist check waits here for the other.
    both_checked = threading.Barrier(2)
    blacklist = BlacklistMixin.blacklist

    def blacklist_after_both_checked(token):
        with contextlib.suppress(threading.BrokenBarrierError):
            both_checked.wait(timeout=1.5)
        return blacklist(token)

    monkeypatch.setattr(BlacklistMixin, "blacklist", blacklist_after_both_checked)
    answers = []

    def use_refresh() -> None:
        try:
            response = APIClient().post("/api/v1/auth/refresh/", {"refresh": refresh})
            answers.append((response.status_code, response.json().get("code")))
        finally:
            connection.close()

    threads = [threading.Thread(target=use_refresh) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(answers) == [(200, None), (401, "token_not_valid")]
