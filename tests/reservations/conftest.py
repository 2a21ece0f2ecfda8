"""More personas for the waiting-room tests, whose lines need more than alice and bob."""

import pytest

from tests.reservations.waiting_room import user_client


@pytest.fixture
def carol_api(db):
    return user_client("carol")


@pytest.fixture
def dave_api(db):
    return user_client("dave")
