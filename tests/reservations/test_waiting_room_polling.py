"""poll_after_seconds and estimated_wait_seconds, from API.md: at least 1, growing with the position,
and a whole queue asked about at most QUEUE_POLL_BUDGET times a second, however long the line."""

import pytest

from reservations.room import poll_after_seconds
from tests.reservations.waiting_room import join, place_of, room_ticket, user_clients

LINES = [1, 2, 10, 249, 250, 251, 1_000, 4_999, 50_000]
BUDGETS = [1, 2, 7, 20, 500, 10_000]


def _asks_per_second(polls) -> float:
    return sum(1 / poll for poll in polls)


@pytest.mark.parametrize("budget", BUDGETS)
def test_a_whole_line_asks_within_the_budget_however_long(budget):
    for places in LINES:
        polls = [poll_after_seconds(index, places, budget) for index in range(1, places + 1)]

        assert all(isinstance(poll, int) and poll >= 1 for poll in polls), (places, budget)
        assert polls == sorted(polls), f"poll_after_seconds shrinks along a line of {places}"
        assert _asks_per_second(polls) <= budget, (places, budget, _asks_per_second(polls))


@pytest.mark.parametrize("budget", [500, 3])
def test_a_line_of_a_million_asks_within_the_budget(budget):
    polls = [poll_after_seconds(index, 1_000_000, budget) for index in range(1, 1_000_001)]

    assert min(polls) >= 1
    assert _asks_per_second(polls) <= budget


def test_poll_after_grows_with_the_position_in_a_long_line():
    polls = [poll_after_seconds(index, 100_000, 500) for index in (1, 100, 1_000, 10_000, 100_000)]

    assert polls[0] == 1
    assert polls == sorted(polls)
    assert polls[-1] > polls[2] > polls[0]


def test_a_short_line_asks_every_second():
    assert {poll_after_seconds(index, 100, 500) for index in range(1, 101)} == {1}


@pytest.mark.django_db(transaction=True)
def test_through_the_api_a_line_of_hundreds_asks_within_the_budget(settings, staff_api):
    settings.QUEUE_POLL_BUDGET = 20
    rate = 60
    ticket = room_ticket(quantity=1, admit_per_minute=rate)
    fans = user_clients(240, "fan")
    for fan in fans:
        join(fan, ticket.pk)

    places = [place_of(fan, ticket.pk) for fan in fans]

    polls = [place["poll_after_seconds"] for place in places]
    assert all(isinstance(poll, int) and poll >= 1 for poll in polls)
    assert _asks_per_second(polls) <= 20
    waiting = sorted((place for place in places if place["status"] == "waiting"), key=lambda p: p["position"])
    assert [place["position"] for place in waiting] == list(range(1, 240))
    by_position = [place["poll_after_seconds"] for place in waiting]
    assert by_position == sorted(by_position), "poll_after_seconds shrinks along the line"
    assert by_position[0] == 1 < by_position[-1]
    estimates = [place["estimated_wait_seconds"] for place in waiting]
    assert estimates == sorted(estimates)
    for place in waiting:
        # An estimate from the position and the rate: about position / rate.
        ideal = place["position"] * 60 / rate
        assert ideal - 60 / rate - 1 <= place["estimated_wait_seconds"] <= ideal + 60 / rate + 1, place
