"""The waiting room raced for real: threads through DRF's APIClient and four gunicorn workers, on
the real Redis (whose Lua scripts keep the line) and PostgreSQL.

API.md's rules under any interleaving: one place per user, joining twice moves no one, distinct
places and positions, admissions in order at the pace and never more than the seats that remain,
an admitted user who books in time gets a seat (or sold_out, only when staff lowered the quantity
since the admission).
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import pytest
from django.db.models import Count, Q
from django.utils import timezone

from reservations.models import ReservationStatus
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
    in_background,
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


# Staff lowering the quantity while the admitted book -------------------------------------------


@dataclass(frozen=True)
class Lowering:
    """A staff PATCH that lowered the quantity: when it was sent and answered (its change applied between)."""

    sent: datetime
    answered: datetime
    before: int
    after: int


@dataclass(frozen=True)
class Booking:
    """A booking by an admitted user: the place it was made from, its answers, when the last one came."""

    place: dict
    attempts: Attempts
    answered: datetime


def _sale_snapshot(ticket_id) -> tuple[int, int, int]:
    """Return the ticket's quantity, issued_count and confirmed reservations, read in one statement (one snapshot)."""
    confirmed = Count("reservations", filter=Q(reservations__status=ReservationStatus.CONFIRMED))
    return (
        Ticket.objects.filter(pk=ticket_id)
        .annotate(confirmed=confirmed)
        .values_list("quantity", "issued_count", "confirmed")
        .get()
    )


def _book_through_the_queue(token: str, ticket_id) -> None:
    """Join, wait for the admission, book: a seat held for good."""
    path = queue_url(ticket_id)
    assert api_call("post", path, token=token).status == 201
    wait_until(
        lambda: api_call("get", path, token=token).body["status"] == "admitted", timeout=2.5, what="an admission"
    )
    assert api_reserve(token, ticket_id).status == 201


def _fan_who_cancels_and_leaves_when_refused(
    token: str, ticket_id, *, done: Callable[[], bool]
) -> tuple[list[Booking], list[tuple[str, Answer]]]:
    """Join, ask until admitted, book (retrying 503s), cancel 0.3 s later and join again. Told
    sold_out, give up the place (its admission ends) and join again at the back.

    Once done() (after the last lowering), an admission still held is used or given up, so that when
    every fan is done each admission still held was granted after the last lowering. Returns the
    bookings and every answer of the queue's endpoints.
    """
    path = queue_url(ticket_id)
    bookings: list[Booking] = []
    queue: list[tuple[str, Answer]] = []

    def send(method: str) -> Answer:
        answer = api_call(method, path, token=token)
        queue.append((method, answer))
        return answer

    send("post")
    while True:
        late = done()
        place = send("get")
        status = place.body.get("status") if place.status == 200 else None
        if status == "admitted":
            attempts = with_retries(partial(api_reserve, token, ticket_id))
            bookings.append(Booking(place.body, attempts, timezone.now()))
            if attempts.final.status == 201:
                if late:
                    return bookings, queue
                time.sleep(0.3)
                assert api_cancel(token, attempts.final.body["id"]).status == 200
            else:
                send("delete")
                if late:
                    return bookings, queue
            send("post")
        elif late:
            return bookings, queue
        elif status in (None, "booked", "expired"):
            send("post")
        time.sleep(0.02)


def test_admitted_users_get_a_seat_or_sold_out_while_staff_lower_the_quantity_to_what_is_issued(
    racers, make_users, staff
):
    """Staff lower 12 seats in steps down to what is issued, and try below it, while users join,
    ask, book and cancel.

    API.md: an admitted user who books in time gets a seat unless staff lowered the quantity
    meanwhile (then: sold_out), the quantity never goes below issued_count (400), and the queue
    never admits so many that the admissions held outnumber the seats that remain. Admissions
    granted before a lowering may outnumber the seats left after it; the fans who hear sold_out give
    theirs up, so once they are done the admissions held are again all the queue's own.
    """
    admission_seconds, keepers = 30, 3
    ticket = room_ticket(quantity=12, admit_per_minute=3000, admission_seconds=admission_seconds)
    # Three seats held for good: issued_count never drops below 3, whatever the cancels.
    for _, token in make_users(keepers, "keeper"):
        _book_through_the_queue(token, ticket.pk)
    crowd = make_users(min(28, racers - 2), "fan")
    staff_token = access_token(staff)
    url = ticket_url(ticket.pk)
    staff_done_at: list[float] = []
    lowerings: list[Lowering] = []
    refused_edits: list[tuple[dict, int, Answer]] = []

    def read_ticket() -> dict:
        answer = api_call("get", url, token=staff_token)
        assert answer.status == 200, answer
        return answer.body

    def patch_quantity(current: dict, quantity: int) -> Answer:
        sent = timezone.now()
        answer = with_retries(partial(api_call, "patch", url, token=staff_token, data={"quantity": quantity})).final
        if answer.status == 200:
            lowerings.append(Lowering(sent, timezone.now(), current["quantity"], quantity))
        else:
            refused_edits.append((current, quantity, answer))
            assert read_ticket()["quantity"] == current["quantity"], "a refused PATCH changed the quantity"
        return answer

    def lower_to(target: Callable[[dict], int]) -> dict:
        """Lower the quantity to target(ticket as read), once that is lower (a seat is free), again
        when a booking raced in between and it was refused."""
        for _ in range(100):
            current = read_ticket()
            quantity = target(current)
            if quantity >= current["quantity"]:
                time.sleep(0.02)
                continue
            answer = patch_quantity(current, quantity)
            if answer.status == 200:
                assert answer.body["quantity"] == quantity >= answer.body["issued_count"], answer
                return answer.body
        raise AssertionError(f"no lowering landed: {refused_edits[-3:]}")

    def staff_lowers() -> tuple[dict, dict, Answer]:
        try:
            for _ in range(2):
                time.sleep(1.5)
                lower_to(lambda t: max(t["issued_count"], t["quantity"] - 3))
            time.sleep(1.5)
            at_issued = lower_to(lambda t: t["issued_count"])
            # Below what is issued (the keepers alone hold more): a 400 on quantity, nothing changes.
            below = read_ticket()
            return at_issued, below, patch_quantity(below, keepers - 1)
        finally:
            staff_done_at.append(time.monotonic())

    def fans_done() -> bool:
        """The fans go on 2 s after the last lowering, then stop."""
        return bool(staff_done_at) and time.monotonic() >= staff_done_at[0] + 2

    stop = threading.Event()

    def watch() -> tuple[int, list[tuple[int, int, int]]]:
        samples, broken = 0, []
        while not stop.is_set():
            quantity, issued, confirmed = snapshot = _sale_snapshot(ticket.pk)
            samples += 1
            if not issued == confirmed <= quantity:
                broken.append(snapshot)
            time.sleep(0.05)
        return samples, broken

    fans = [partial(_fan_who_cancels_and_leaves_when_refused, token, ticket.pk, done=fans_done) for _, token in crowd]
    with in_background(watch) as watched:
        try:
            *results, (at_issued, below, below_issued) = run_together([*fans, staff_lowers], threads=len(fans) + 1)
        finally:
            stop.set()
        samples, broken = watched()

    # Staff: three lowerings landed, the last down to what was issued when read; below what is
    # issued, a 400 on quantity (patch_quantity checked that nothing changed after each refusal).
    assert len(lowerings) == 3 and lowerings[-1].after == at_issued["quantity"], lowerings
    assert below["issued_count"] >= keepers > keepers - 1, below
    assert below_issued.status == 400 and set(below_issued.body) == {"quantity"}, below_issued
    for _, quantity, answer in refused_edits:
        assert answer.status == 400 and set(answer.body) == {"quantity"}, (quantity, answer)

    # No oversell at any check, nor at the end.
    assert samples >= 20 and not broken, (samples, broken[:3])
    quantity, issued, confirmed = _sale_snapshot(ticket.pk)
    assert issued == confirmed <= quantity == at_issued["quantity"], (quantity, issued, confirmed)
    check_invariants()

    # Every booking by an admitted user is a 201, or sold_out when staff lowered the quantity
    # between its admission and its answer (API.md's exception); a 503 only on the way to those.
    bookings = [booking for booked, _ in results for booking in booked]
    assert_no_server_errors([booking.attempts for booking in bookings])
    finals = [booking.attempts.final for booking in bookings]
    assert all(a.status == 201 or (a.status, a.code) == (409, "sold_out") for a in finals), [
        a for a in finals if a.status != 201
    ][:3]
    for booking in bookings:
        assert booking.answered < parse_time(booking.place["admitted_until"]), booking
        if booking.attempts.final.status == 201:
            continue
        admitted = admitted_at(booking.place, admission_seconds)
        assert any(low.sent < booking.answered and low.answered > admitted for low in lowerings), (
            f"admitted at {admitted.isoformat()}, refused sold_out at {booking.answered.isoformat()} "
            f"with no lowering between: {lowerings}"
        )
    # Seats were booked again after cancels (the sold_out refusals vary: 1 to 7 in a run).
    booked = sum(a.status == 201 for a in finals)
    assert booked > 12 and booked + keepers > confirmed, (booked, confirmed)

    # The queue's own answers are documented ones.
    queue_answers = {(method, a.status, a.code) for _, answers in results for method, a in answers}
    documented = {("post", 201, None), ("post", 200, None), ("post", 409, "sold_out")}
    documented |= {("get", 200, None), ("get", 404, None), ("delete", 204, None)}
    assert queue_answers <= documented, queue_answers - documented

    # At rest, once the fans are done: the queue admits up to the seats that remain, never more.
    remaining = Ticket.objects.get(pk=ticket.pk).remaining

    def filled() -> dict | None:
        stats = api_call("get", stats_url(ticket.pk), token=staff_token).body
        assert stats["admitted"] <= remaining, (stats, remaining)
        return stats if stats["admitted"] == remaining or stats["waiting"] == 0 else None

    stats = wait_until(filled, timeout=2.5, what=f"the queue to admit up to the {remaining} seats that remain")
    places = [api_call("get", queue_url(ticket.pk), token=token) for _, token in crowd]
    admitted_places = [p.body for p in places if p.status == 200 and p.body["status"] == "admitted"]
    assert len(admitted_places) == stats["admitted"] <= remaining, (stats, remaining, len(admitted_places))


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
