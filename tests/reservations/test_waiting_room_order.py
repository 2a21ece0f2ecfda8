"""The waiting room's order and admissions, from API.md: FIFO, the shuffled early joiners, the
pace, the seats, sold_out places keeping their order, expiry.

Admission times are read the way a client can read them: admitted_until - admission_seconds.
"""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.reservations.helpers import cancel, parse_time, reserve
from tests.reservations.waiting_room import (
    admitted_at,
    admitted_soon,
    assert_paced,
    assert_place,
    join,
    leave,
    place_of,
    room_ticket,
    settles,
    stats,
    ticket_url,
    user_clients,
)
from tests.servers import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def _all_admitted(staff_api, ticket, n: int) -> None:
    wait_until(lambda: stats(staff_api, ticket.pk)["admitted"] >= n, timeout=20, what=f"{n} admissions")


def _positions(clients, ticket) -> list:
    return [place_of(client, ticket.pk)["position"] for client in clients]


# FIFO after the opening ------------------------------------------------------------------------


def test_places_after_the_opening_are_admitted_in_join_order_at_the_set_pace(staff_api):
    rate, seconds = 600, 60
    ticket = room_ticket(quantity=50, admit_per_minute=rate, admission_seconds=seconds)
    fans = user_clients(12, "fan")
    joined = [join(fan, ticket.pk).json() for fan in fans]

    _all_admitted(staff_api, ticket, len(fans))

    places = [place_of(fan, ticket.pk) for fan in fans]
    assert [place["status"] for place in places] == ["admitted"] * len(fans)
    times = [admitted_at(place, seconds) for place in places]
    assert times == sorted(times), "a place was admitted before one that joined ahead of it"
    assert len(set(times)) == len(times)
    assert_paced(times, admit_per_minute=rate)
    interval = timedelta(seconds=60 / rate)
    previous = None
    for place, at in zip(joined, times, strict=True):
        # Its turn: it has joined, and the pace allows one more after the place ahead.
        turn = (
            parse_time(place["joined_at"])
            if previous is None
            else max(parse_time(place["joined_at"]), previous + interval)
        )
        assert turn - timedelta(milliseconds=2) <= at <= turn + timedelta(seconds=2), (place, at, turn)
        previous = at


def test_positions_after_the_opening_follow_the_join_order(staff_api):
    ticket = room_ticket(quantity=1, admit_per_minute=1)
    fans = user_clients(8, "fan")
    for fan in fans:
        join(fan, ticket.pk)

    assert place_of(fans[0], ticket.pk)["status"] == "admitted"
    assert _positions(fans[1:], ticket) == list(range(1, 8))
    estimates = [place_of(fan, ticket.pk)["estimated_wait_seconds"] for fan in fans[1:]]
    assert estimates == sorted(estimates) and estimates[-1] > estimates[0]
    assert stats(staff_api, ticket.pk) == {"waiting": 7, "admitted": 1, "booked": 0, "expired": 0}


def test_pre_opening_joiners_are_placed_in_random_order_ahead_of_later_ones(staff_api):
    rate, seconds = 6000, 60
    starts = timezone.now() + timedelta(seconds=3)
    ticket = room_ticket(quantity=100, admit_per_minute=rate, admission_seconds=seconds, sale_starts_at=starts)
    early, late = user_clients(20, "early"), user_clients(5, "late")
    for fan in early:
        place = join(fan, ticket.pk).json()
        assert_place(place, ticket_id=ticket.pk, status="waiting", sale_open=False)
        assert parse_time(place["joined_at"]) < starts, "the test was too slow to join before the opening"
    wait_until(lambda: timezone.now() > starts + timedelta(milliseconds=50), timeout=10, what="the opening")
    for fan in late:
        assert parse_time(join(fan, ticket.pk).json()["joined_at"]) >= starts

    _all_admitted(staff_api, ticket, 25)

    early_times = [admitted_at(place_of(fan, ticket.pk), seconds) for fan in early]
    late_times = [admitted_at(place_of(fan, ticket.pk), seconds) for fan in late]
    assert max(early_times) < min(late_times), "a later joiner was admitted before an early one"
    assert late_times == sorted(late_times), "after the opening, first come is first served"
    assert early_times != sorted(early_times), "the early joiners kept their join order"
    assert early_times != sorted(early_times, reverse=True), "the early joiners are in reverse join order"
    assert min(early_times) >= starts - timedelta(milliseconds=2), "a place was admitted before the sale opened"
    assert_paced(early_times + late_times, admit_per_minute=rate)


def test_pre_opening_positions_appear_at_the_opening_and_are_a_permutation(staff_api):
    starts = timezone.now() + timedelta(seconds=2)
    ticket = room_ticket(quantity=1, admit_per_minute=1, sale_starts_at=starts)
    fans = user_clients(10, "early")
    for fan in fans:
        join(fan, ticket.pk)
    assert _positions(fans, ticket) == [None] * 10

    wait_until(lambda: timezone.now() > starts, timeout=10, what="the opening")

    places = [place_of(fan, ticket.pk) for fan in fans]
    assert sorted(place["status"] for place in places) == ["admitted"] + ["waiting"] * 9
    assert sorted(place["position"] for place in places if place["status"] == "waiting") == list(range(1, 10))


# Joining twice, joining again ------------------------------------------------------------------


def test_joining_twice_never_moves_anyone(alice_api, bob_api, carol_api, dave_api):
    ticket = room_ticket(quantity=1, admit_per_minute=1)
    clients = [alice_api, bob_api, carol_api, dave_api]
    first = [join(client, ticket.pk).json() for client in clients]

    again = [join(client, ticket.pk) for client in reversed(clients)]

    assert [answer.status_code for answer in again] == [200] * 4
    assert [answer.json()["joined_at"] for answer in reversed(again)] == [place["joined_at"] for place in first]
    assert place_of(alice_api, ticket.pk)["status"] == "admitted"
    assert _positions(clients[1:], ticket) == [1, 2, 3]


def test_a_place_given_up_joins_again_at_the_back(alice_api, bob_api, carol_api, dave_api):
    ticket = room_ticket(quantity=1, admit_per_minute=1)
    for client in (alice_api, bob_api, carol_api, dave_api):
        join(client, ticket.pk)
    leave(bob_api, ticket.pk)

    response = join(bob_api, ticket.pk)

    assert response.status_code == 201
    assert response.json()["position"] == 3
    assert _positions([carol_api, dave_api], ticket) == [1, 2]


def test_a_booked_place_may_join_again_at_the_back_once_the_seat_is_cancelled(alice_api, bob_api, carol_api):
    ticket = room_ticket(quantity=1, admit_per_minute=6000)
    join(alice_api, ticket.pk)
    join(bob_api, ticket.pk)
    join(carol_api, ticket.pk)
    booking = reserve(alice_api, ticket.pk).json()
    assert_place(place_of(alice_api, ticket.pk), ticket_id=ticket.pk, status="booked")
    assert cancel(alice_api, booking["id"]).status_code == 200
    admitted_soon(bob_api, ticket.pk)

    response = join(alice_api, ticket.pk)

    assert response.status_code == 201, response.content
    assert_place(response.json(), ticket_id=ticket.pk, status="waiting")
    assert response.json()["position"] == 2
    assert place_of(carol_api, ticket.pk)["position"] == 1


# Seats ----------------------------------------------------------------------------------------


def test_admissions_never_outnumber_the_seats_that_remain(staff_api):
    ticket = room_ticket(quantity=3, admit_per_minute=6000)
    fans = user_clients(8, "fan")
    for fan in fans:
        join(fan, ticket.pk)
    time.sleep(0.2)  # the pace would allow every one of them by now; the seats do not
    settles(staff_api, ticket.pk, {"waiting": 5, "admitted": 3, "booked": 0, "expired": 0})

    booking = reserve(fans[0], ticket.pk).json()
    # Two seats remain, both held by admissions: no one more is admitted.
    settles(staff_api, ticket.pk, {"waiting": 5, "admitted": 2, "booked": 1, "expired": 0})
    assert place_of(fans[3], ticket.pk)["status"] == "waiting"

    cancel(fans[0], booking["id"])
    settles(staff_api, ticket.pk, {"waiting": 4, "admitted": 3, "booked": 1, "expired": 0})

    assert staff_api.patch(ticket_url(ticket.pk), {"quantity": 5}, format="json").status_code == 200
    settles(staff_api, ticket.pk, {"waiting": 2, "admitted": 5, "booked": 1, "expired": 0})
    assert [place_of(fan, ticket.pk)["status"] for fan in fans] == ["booked"] + ["admitted"] * 5 + ["waiting"] * 2


def test_waiting_places_answer_sold_out_and_keep_their_order_when_seats_come_back(staff_api):
    ticket = room_ticket(quantity=2, admit_per_minute=6000)
    fans = user_clients(6, "fan")
    for fan in fans:
        join(fan, ticket.pk)
    settles(staff_api, ticket.pk, {"waiting": 4, "admitted": 2, "booked": 0, "expired": 0})
    bookings = [reserve(fan, ticket.pk).json() for fan in fans[:2]]

    for fan in fans[2:]:
        assert_place(place_of(fan, ticket.pk), ticket_id=ticket.pk, status="sold_out")
    assert stats(staff_api, ticket.pk) == {"waiting": 4, "admitted": 0, "booked": 2, "expired": 0}

    cancel(fans[0], bookings[0]["id"])
    settles(staff_api, ticket.pk, {"waiting": 3, "admitted": 1, "booked": 2, "expired": 0})
    admitted_soon(fans[2], ticket.pk)
    assert _positions(fans[3:], ticket) == [1, 2, 3]

    staff_api.patch(ticket_url(ticket.pk), {"quantity": 4}, format="json")
    settles(staff_api, ticket.pk, {"waiting": 1, "admitted": 3, "booked": 2, "expired": 0})
    assert [place_of(fan, ticket.pk)["status"] for fan in fans[3:]] == ["admitted", "admitted", "waiting"]
    assert place_of(fans[5], ticket.pk)["position"] == 1


@pytest.mark.parametrize("how", ["cancel", "larger-quantity"])
def test_a_seat_that_comes_back_is_admitted_from_when_it_came_back(staff_api, alice_api, bob_api, how):
    """API.md: a place's turn comes when a seat is free for it; the admission starts no earlier.

    So its holder gets the whole admission_seconds from when the seat came back.
    """
    seconds = 60
    ticket = room_ticket(quantity=1, admit_per_minute=6000, admission_seconds=seconds)
    join(alice_api, ticket.pk)
    join(bob_api, ticket.pk)
    booking = reserve(alice_api, ticket.pk).json()
    assert place_of(bob_api, ticket.pk)["status"] == "sold_out"
    time.sleep(1.5)  # nobody asks meanwhile

    came_back = timezone.now()
    if how == "cancel":
        assert cancel(alice_api, booking["id"]).status_code == 200
    else:
        assert staff_api.patch(ticket_url(ticket.pk), {"quantity": 2}, format="json").status_code == 200
    place = admitted_soon(bob_api, ticket.pk)

    assert admitted_at(place, seconds) >= came_back - timedelta(milliseconds=50), (
        f"admitted at {admitted_at(place, seconds)}, before the seat came back at {came_back}"
    )


# Expiry ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_an_expired_admission_hands_its_seat_to_the_next_place(staff_api, alice_api, bob_api, carol_api):
    seconds = 30
    ticket = room_ticket(quantity=1, admit_per_minute=600, admission_seconds=seconds)
    alice = join(alice_api, ticket.pk).json()
    join(bob_api, ticket.pk)
    join(carol_api, ticket.pk)
    assert alice["status"] == "admitted"
    waiting = place_of(bob_api, ticket.pk)
    assert_place(waiting, ticket_id=ticket.pk, status="waiting")
    ends = parse_time(alice["admitted_until"])

    wait_until(lambda: timezone.now() > ends + timedelta(milliseconds=100), timeout=seconds + 10, what="the expiry")

    assert_place(place_of(alice_api, ticket.pk), ticket_id=ticket.pk, status="expired")
    bob = place_of(bob_api, ticket.pk)
    assert bob["status"] == "admitted"
    # Bob's turn came when alice's admission ended; he is admitted within 2 seconds of it.
    assert ends - timedelta(milliseconds=2) <= admitted_at(bob, seconds) <= ends + timedelta(seconds=2)
    assert place_of(carol_api, ticket.pk)["position"] == 1
    assert stats(staff_api, ticket.pk) == {"waiting": 1, "admitted": 1, "booked": 0, "expired": 1}

    refused = reserve(alice_api, ticket.pk)
    assert refused.status_code == 409
    assert refused.json()["code"] == "not_admitted"
    assert refused.json()["queue"]["status"] == "expired"

    again = join(alice_api, ticket.pk)
    assert again.status_code == 201, again.content
    assert (again.json()["status"], again.json()["position"]) == ("waiting", 2)
    assert reserve(bob_api, ticket.pk).status_code == 201
    assert place_of(alice_api, ticket.pk)["status"] == "sold_out"


# A paused sale ----------------------------------------------------------------------------------


def _pause_for(staff_api, ticket, minutes: int) -> None:
    starts = (timezone.now() + timedelta(minutes=minutes)).isoformat()
    assert staff_api.patch(ticket_url(ticket.pk), {"sale_starts_at": starts}, format="json").status_code == 200


@pytest.mark.parametrize("resume_to", ["null", "now"])
def test_a_pause_admits_no_one_and_resuming_admits_from_then_in_order(staff_api, resume_to):
    """Resuming as the admin's control does (sale_starts_at = now) or by clearing the start."""
    seconds = 60
    ticket = room_ticket(quantity=10, admit_per_minute=6000, admission_seconds=seconds)
    fans = user_clients(4, "fan")
    join(fans[0], ticket.pk)
    _pause_for(staff_api, ticket, 20)
    for fan in fans[1:]:
        assert_place(join(fan, ticket.pk).json(), ticket_id=ticket.pk, status="waiting", sale_open=False)
    time.sleep(1)
    assert stats(staff_api, ticket.pk)["admitted"] == 1, "a place was admitted while the sale was paused"

    resumed = timezone.now()
    to = None if resume_to == "null" else resumed.isoformat()
    assert staff_api.patch(ticket_url(ticket.pk), {"sale_starts_at": to}, format="json").status_code == 200

    places = [admitted_soon(fan, ticket.pk) for fan in fans[1:]]
    times = [admitted_at(place, seconds) for place in places]
    assert times == sorted(times)
    assert min(times) >= resumed - timedelta(milliseconds=50), (
        f"admitted at {min(times)}, while the sale was paused (resumed at {resumed})"
    )


def test_joiners_during_a_pause_queue_behind_the_places_waiting_since_the_opening(staff_api, settings):
    """API.md: a waiting place never loses its turn to a later one. The admin's pause (15 minutes by
    default) keeps the queue open (QUEUE_OPENS_MINUTES), so people join while it lasts."""
    settings.QUEUE_OPENS_MINUTES = 30
    ticket = room_ticket(quantity=1, admit_per_minute=1)
    fans = user_clients(6, "fan")
    for fan in fans[:3]:
        join(fan, ticket.pk)
    assert _positions(fans[1:3], ticket) == [1, 2]

    _pause_for(staff_api, ticket, 15)
    for fan in fans[3:]:
        assert join(fan, ticket.pk).status_code == 201
    assert staff_api.patch(ticket_url(ticket.pk), {"sale_starts_at": None}, format="json").status_code == 200

    assert _positions(fans[1:], ticket) == [1, 2, 3, 4, 5], "a joiner during the pause went ahead"


def test_an_opening_moved_earlier_admits_from_the_new_opening(staff_api):
    seconds = 60
    ticket = room_ticket(
        admit_per_minute=6000, admission_seconds=seconds, sale_starts_at=timezone.now() + timedelta(minutes=20)
    )
    fans = user_clients(3, "early")
    for fan in fans:
        join(fan, ticket.pk)

    opened = timezone.now()
    assert (
        staff_api.patch(ticket_url(ticket.pk), {"sale_starts_at": opened.isoformat()}, format="json").status_code == 200
    )

    times = [admitted_at(admitted_soon(fan, ticket.pk), seconds) for fan in fans]
    assert min(times) >= opened - timedelta(milliseconds=2)
