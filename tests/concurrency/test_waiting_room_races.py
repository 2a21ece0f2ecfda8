"""The waiting room raced for real: threads through DRF's APIClient and four gunicorn workers, on
the real Redis (whose Lua scripts keep the line) and PostgreSQL.

API.md's rules under any interleaving: one place per user, joining twice moves no one, distinct
places and positions, admissions in order at the pace and never more than the seats that remain,
an admitted user who books in time always gets a seat.
"""

import time
from datetime import timedelta
from functools import partial

import pytest
from django.utils import timezone

from tests.concurrency.harness import (
    Answer,
    Attempts,
    api_call,
    api_cancel,
    api_reserve,
    assert_no_server_errors,
    check_invariants,
    confirmed_count,
    http_call,
    http_reserve,
    issued_count,
    run_together,
    with_retries,
)
from tests.factories import access_token
from tests.reservations.helpers import parse_time
from tests.reservations.waiting_room import (
    admitted_at,
    assert_paced,
    assert_place,
    queue_url,
    room_ticket,
    stats_url,
    ticket_url,
)
from tests.servers import wait_until
from tickets.models import Ticket

pytestmark = pytest.mark.django_db(transaction=True)


def _assert_fifo(places: list[dict], *, admission_seconds: int) -> None:
    """Assert that the order of places (admitted first, by admission; then waiting, by position)
    never puts a later joiner ahead of an earlier one (joined_at has millisecond precision)."""
    admitted = sorted((p for p in places if p["status"] == "admitted"), key=lambda p: admitted_at(p, admission_seconds))
    waiting = sorted((p for p in places if p["status"] == "waiting"), key=lambda p: p["position"])
    joined = [parse_time(place["joined_at"]) for place in admitted + waiting]
    assert joined == sorted(joined), "a later joiner is ahead of an earlier one"


def _assert_positions_are_a_permutation(places: list[dict]) -> None:
    positions = sorted(place["position"] for place in places if place["status"] == "waiting")
    assert positions == list(range(1, len(positions) + 1)), positions


def test_60_users_joining_at_once_get_60_distinct_places(racers, make_users, staff):
    ticket = room_ticket(quantity=1, admit_per_minute=1)
    crowd = make_users(60, "fan")
    path = queue_url(ticket.pk)

    joined = run_together([partial(api_call, "post", path, token=token) for _, token in crowd], threads=racers)

    assert [answer.status for answer in joined] == [201] * 60, [a for a in joined if a.status != 201][:3]
    places = [api_call("get", path, token=token).body for _, token in crowd]
    assert sorted(place["status"] for place in places) == ["admitted"] + ["waiting"] * 59
    _assert_positions_are_a_permutation(places)
    _assert_fifo(places, admission_seconds=30)
    for place, answer in zip(places, joined, strict=True):
        assert place["joined_at"] == answer.body["joined_at"]
    stats = api_call("get", stats_url(ticket.pk), token=access_token(staff)).body
    assert stats == {"waiting": 59, "admitted": 1, "booked": 0, "expired": 0}


def test_one_user_joining_30_times_at_once_holds_one_place(racers, make_users, staff):
    ticket = room_ticket(quantity=1, admit_per_minute=1)
    (_, first), (_, token) = make_users(2, "fan")
    api_call("post", queue_url(ticket.pk), token=first)

    joined = run_together([partial(api_call, "post", queue_url(ticket.pk), token=token)] * 30, threads=racers)

    assert sorted(answer.status for answer in joined) == [200] * 29 + [201]
    assert len({(a.body["joined_at"], a.body["position"]) for a in joined}) == 1
    assert joined[0].body["position"] == 1
    stats = api_call("get", stats_url(ticket.pk), token=access_token(staff)).body
    assert stats == {"waiting": 1, "admitted": 1, "booked": 0, "expired": 0}


def _fan(token: str, ticket_id, *, deadline: float, cancels: bool) -> list[tuple[dict, object]]:
    """Join, ask until admitted, book (retrying 503s); a canceller cancels and joins again.

    Returns each booking attempt with the place it was made from.
    """
    path = queue_url(ticket_id)
    bookings: list[tuple[dict, object]] = []
    api_call("post", path, token=token)
    while time.monotonic() < deadline:
        place = api_call("get", path, token=token)
        status = place.body.get("status") if place.status == 200 else None
        if status == "admitted" and parse_time(place.body["admitted_until"]) > timezone.now() + timedelta(seconds=5):
            attempts = with_retries(partial(api_reserve, token, ticket_id))
            bookings.append((place.body, attempts))
            if attempts.final.status != 201 or not cancels:
                return bookings
            time.sleep(0.02)
            assert api_cancel(token, attempts.final.body["id"]).status == 200
            api_call("post", path, token=token)
        elif status in (None, "booked", "expired"):
            api_call("post", path, token=token)
        time.sleep(0.02)
    return bookings


def test_admitted_users_always_get_a_seat_while_seats_are_booked_cancelled_and_added(racers, make_users, staff):
    """Few seats for many users: if admissions ever outnumbered the seats that remain, an admitted
    user who books at once would hear sold_out."""
    ticket = room_ticket(quantity=4, admit_per_minute=3000, admission_seconds=30)
    crowd = make_users(min(30, racers - 1), "fan")
    staff_token = access_token(staff)
    deadline = time.monotonic() + 8

    def staff_adds_seats() -> list[Answer]:
        answers = []
        for quantity in (6, 9, 12):
            time.sleep(1.5)
            answers.append(api_call("patch", ticket_url(ticket.pk), token=staff_token, data={"quantity": quantity}))
        return answers

    fans = [
        partial(_fan, token, ticket.pk, deadline=deadline, cancels=n % 3 == 0) for n, (_, token) in enumerate(crowd)
    ]
    *results, edits = run_together([*fans, staff_adds_seats], threads=len(fans) + 1)

    assert [answer.status for answer in edits] == [200, 200, 200]
    attempts = [attempt for bookings in results for _, attempt in bookings]
    assert_no_server_errors(attempts)
    refused = [
        (place, attempt.final) for bookings in results for place, attempt in bookings if attempt.final.status != 201
    ]
    assert not refused, f"{len(refused)} admitted users could not book, e.g. {refused[:2]}"
    booked = sum(attempt.final.status == 201 for attempt in attempts)
    cancelled = booked - confirmed_count(ticket.pk)
    assert booked > 12 and cancelled > 0, (booked, cancelled)
    assert issued_count(ticket.pk) == confirmed_count(ticket.pk) <= 12
    check_invariants()
    # At rest, the admissions held never outnumber the seats that remain.
    stats = api_call("get", stats_url(ticket.pk), token=staff_token).body
    remaining = Ticket.objects.get(pk=ticket.pk).remaining
    assert stats["admitted"] <= remaining, (stats, remaining)


# Many processes: the Lua scripts under four gunicorn workers -----------------------------------


@pytest.mark.slow
def test_hundreds_joining_asking_and_booking_across_four_workers_keep_the_line(gunicorn, racers, make_users, staff):
    seats, crowd_size, rate, seconds = 40, 300, 6000, 60
    ticket = room_ticket(quantity=seats, admit_per_minute=rate, admission_seconds=seconds)
    crowd = make_users(crowd_size, "fan")
    path = queue_url(ticket.pk)
    staff_token = access_token(staff)
    call = partial(http_call, gunicorn)

    def join_twice_and_ask(token: str) -> tuple[Answer, Answer, Answer]:
        return call("POST", path, token=token), call("POST", path, token=token), call("GET", path, token=token)

    answers = run_together([partial(join_twice_and_ask, token) for _, token in crowd], threads=racers)

    assert_no_server_errors([Attempts(list(three)) for three in answers])
    assert [(first.status, again.status) for first, again, _ in answers] == [(201, 200)] * crowd_size
    for first, again, asked in answers:
        assert first.body["joined_at"] == again.body["joined_at"] == asked.body["joined_at"]
    # Every seat is admitted within 2 seconds of its turn, and no more than the seats.
    expected = {"waiting": crowd_size - seats, "admitted": seats, "booked": 0, "expired": 0}
    wait_until(lambda: call("GET", stats_url(ticket.pk), token=staff_token).body == expected, timeout=3, what=expected)

    places = run_together([partial(call, "GET", path, token=token) for _, token in crowd], threads=racers)
    places = [answer.body for answer in places]
    assert sorted(p["status"] for p in places) == ["admitted"] * seats + ["waiting"] * (crowd_size - seats)
    _assert_positions_are_a_permutation(places)
    _assert_fifo(places, admission_seconds=seconds)
    assert_paced([admitted_at(p, seconds) for p in places if p["status"] == "admitted"], admit_per_minute=rate)

    # The admitted book while everyone else asks: every admitted user gets a seat, then the rest
    # of the line answers sold_out.
    admitted = [token for (_, token), place in zip(crowd, places, strict=True) if place["status"] == "admitted"]
    waiting = [token for (_, token), place in zip(crowd, places, strict=True) if place["status"] == "waiting"]
    jobs = [partial(with_retries, partial(http_reserve, gunicorn, token, ticket.pk)) for token in admitted]
    jobs += [partial(call, "GET", path, token=token) for token in waiting]
    results = run_together(jobs, threads=racers)

    bookings = results[: len(admitted)]
    assert_no_server_errors(bookings)
    assert [attempt.final.status for attempt in bookings] == [201] * seats, [a.final for a in bookings][:3]
    assert issued_count(ticket.pk) == seats == confirmed_count(ticket.pk)
    for token in waiting[:20]:
        assert_place(call("GET", path, token=token).body, ticket_id=ticket.pk, status="sold_out")
    stats = call("GET", stats_url(ticket.pk), token=staff_token).body
    assert stats == {"waiting": crowd_size - seats, "admitted": 0, "booked": seats, "expired": 0}
    assert "Traceback" not in gunicorn.log()
    check_invariants()
