"""Group booking: bookings wait in their ticket's line and the lock holder books them in batches.

Each batch must answer every booking exactly as booking it alone would, give the seats in the
order the bookings joined the line, and never book a request that answered 503.
"""

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial

import pytest
import redis
from django.conf import settings
from django.test import override_settings
from django_redis import get_redis_connection
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

from fastticket import redis as ft_redis
from reservations import line as booking_line
from reservations.models import Reservation
from tests.concurrency.harness import (
    Answer,
    Attempts,
    api_reserve,
    assert_no_server_errors,
    assert_sold_exactly,
    check_invariants,
    confirmed_count,
    in_background,
    issued_count,
    reserve_path,
    sale,
)
from tests.factories import access_token, make_ticket, make_user
from tests.servers import wait_until
from tickets.locks import TicketLock, ticket_keys

pytestmark = pytest.mark.django_db(transaction=True)


def _line_length(ticket_id) -> int:
    return get_redis_connection("default").zcard(ticket_keys(ticket_id).line)


@contextmanager
def _lock_held(ticket_id) -> Iterator[Callable[[], None]]:
    """Hold the ticket's lock as a staff edit would, so that bookings queue in its line; yield its release."""
    lock = TicketLock(get_redis_connection("locks"), ticket_id)
    assert lock.acquire_within(0), "the ticket's lock was not free"
    released = []

    def release() -> None:
        if not released:
            released.append(True)
            lock.release()

    try:
        yield release
    finally:
        release()


def _enter_in_order(stack: ExitStack, ticket_id, calls: list[Callable[[], Answer]]) -> list[Callable[[], Answer]]:
    """Start each call once the one before it has joined the line (or was refused without joining it,
    as a seat holder is): their arrival order is the list's."""
    results = []
    for call in calls:
        joined = _line_length(ticket_id)
        done = threading.Event()
        results.append(stack.enter_context(in_background(partial(_then_set, call, done))))
        wait_until(
            lambda joined=joined, done=done: done.is_set() or _line_length(ticket_id) > joined,
            timeout=10,
            what="a booking to join the line or be answered",
        )
    return results


def _then_set(call: Callable[[], Answer], done: threading.Event) -> Answer:
    try:
        return call()
    finally:
        done.set()


def _sample(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def _book_first_seat(user, ticket) -> str:
    answer = api_reserve(access_token(user), ticket.pk)
    assert answer.status == 201, answer
    return answer.body["id"]


def _shape(answer: Answer, own: dict[str, str]) -> tuple:
    """An answer as one-by-one booking would give it, naming a held seat by whose it is."""
    if answer.code == "already_reserved":
        return answer.status, answer.code, own[answer.body["reservation"]]
    return answer.status, answer.code


def test_a_batch_answers_each_booking_exactly_as_booking_it_alone_would(make_users):
    people = make_users(5, "batch")
    holder = make_user("holder")
    # Arrival order: new users, a seat holder, the same user twice; the seats run out mid-batch.
    order = [people[0], (holder, access_token(holder)), people[1], people[2], people[0], people[3], people[4]]

    def sell(batched: bool) -> tuple[list[Answer], dict[str, str], float, float]:
        ticket = make_ticket(quantity=4)
        owners = {_book_first_seat(holder, ticket): holder.username}
        calls = [partial(api_reserve, token, ticket.pk) for _, token in order]
        batches, bookings = _sample("fastticket_booking_batch_size_count"), _sample("fastticket_booking_batch_size_sum")
        if batched:
            with ExitStack() as stack, _lock_held(ticket.pk) as release:
                pending = _enter_in_order(stack, ticket.pk, calls)
                release()
                answers = [result() for result in pending]
        else:
            answers = [call() for call in calls]
        owners |= {a.body["id"]: user.username for (user, _), a in zip(order, answers, strict=True) if a.status == 201}
        assert issued_count(ticket.pk) == 4 == confirmed_count(ticket.pk)
        batches = _sample("fastticket_booking_batch_size_count") - batches
        bookings = _sample("fastticket_booking_batch_size_sum") - bookings
        return answers, owners, batches, bookings

    together, together_owners, batches, bookings = sell(batched=True)
    # The seat holder was refused by the booking's first read and never joined the line.
    assert (batches, bookings) == (1, len(order) - 1), "the bookings were not booked as one batch"
    alone, alone_owners, _, _ = sell(batched=False)

    assert [_shape(a, together_owners) for a in together] == [_shape(a, alone_owners) for a in alone]
    assert [_shape(a, together_owners) for a in together] == [
        (201, None),
        (409, "already_reserved", "holder"),
        (201, None),
        (201, None),
        (409, "already_reserved", "batch0"),
        (409, "sold_out"),
        (409, "sold_out"),
    ]
    check_invariants()


class LineWatch(threading.Thread):
    """Record, from Redis' MONITOR, who joined a ticket's line in which order and who left it."""

    def __init__(self, ticket_id) -> None:
        super().__init__(daemon=True)
        self.keys = ticket_keys(ticket_id)
        self.joined: list[tuple[int, str]] = []  # (arrival number, reservation id)
        self.users: dict[str, str] = {}  # reservation id -> user id
        self.withdrawn: set[str] = set()
        self.ready = threading.Event()
        self.marker = f"linewatch-stop-{ticket_id}"
        # A client of its own: MONITOR waits for commands longer than the cache's socket timeout.
        self.client = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])

    def run(self) -> None:
        with self.client.monitor() as monitor:
            self.ready.set()
            for event in monitor.listen():
                words = event["command"].split(" ")
                if words[:2] == ["ECHO", self.marker]:
                    return
                if words[:2] == ["ZADD", self.keys.line]:
                    self.joined.append((int(words[2]), words[3]))
                elif words[:2] == ["HSET", self.keys.entries]:
                    self.users[words[2]] = words[3].split("|")[1]
                elif words[:2] == ["ZREM", self.keys.line]:
                    self.withdrawn.add(words[2])

    def __enter__(self) -> "LineWatch":
        self.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *exc_info) -> None:
        self.client.echo(self.marker)
        self.join(timeout=30)

    def arrival_order(self) -> list[str]:
        """The users in the order they joined the line (withdrawn bookings left out)."""
        return [self.users[rid] for _, rid in sorted(self.joined) if rid not in self.withdrawn]


def test_300_users_for_50_seats_the_first_50_to_join_the_line_get_the_seats(racers, make_users):
    ticket = make_ticket(quantity=50)
    crowd = make_users(300, "arrival")

    with LineWatch(ticket.pk) as watch:
        attempts = sale(lambda user, token: api_reserve(token, ticket.pk), crowd, threads=racers)

    assert_sold_exactly(ticket, crowd, attempts, seats=50)
    joined = watch.arrival_order()
    assert len(joined) >= 50, "fewer than 50 bookings joined the line"
    winners = {str(user.pk) for (user, _), attempt in zip(crowd, attempts, strict=True) if attempt.final.status == 201}
    assert set(joined[:50]) == winners, "a seat went to a later arrival than someone refused"
    # And the seats went in that order: reservations by booking time follow the arrivals.
    booked = Reservation.objects.filter(ticket=ticket).order_by("reserved_at", "id").values_list("user_id", flat=True)
    assert [str(user_id) for user_id in booked] == joined[:50]


def _stalled_line_sale(ticket, crowd, *, latecomer) -> list[Answer]:
    """Stall the line under a held lock until every booking's wait runs out, then let a latecomer book."""
    with ExitStack() as stack, _lock_held(ticket.pk):
        pending = _enter_in_order(stack, ticket.pk, [partial(api_reserve, token, ticket.pk) for _, token in crowd])
        answers = [result() for result in pending]
    # The lock is free again: the latecomer's holder takes whatever the line still holds.
    late = api_reserve(access_token(latecomer), ticket.pk)
    assert late.status == 201, late
    time.sleep(0.3)
    return answers


def _assert_503s_never_booked(ticket, crowd, answers: list[Answer]) -> None:
    assert_no_server_errors([Attempts([answer]) for answer in answers])
    assert {(a.status, a.code) for a in answers} == {(503, "busy")}, answers
    assert all(a.retry_after for a in answers)
    booked_users = set(Reservation.objects.filter(ticket=ticket).values_list("user_id", flat=True))
    assert not booked_users & {user.pk for user, _ in crowd}, "a request that answered 503 was booked"


@override_settings(BOOKING_LOCK_WAIT=1)
def test_a_booking_whose_wait_runs_out_answers_503_and_is_never_booked_later(make_users, alice):
    ticket = make_ticket(quantity=10)
    crowd = make_users(5, "late")

    answers = _stalled_line_sale(ticket, crowd, latecomer=alice)

    _assert_503s_never_booked(ticket, crowd, answers)
    assert issued_count(ticket.pk) == 1 == confirmed_count(ticket.pk)
    check_invariants()


# A withdrawal without the line's removal check: it answers "withdrawn" and leaves the booking in
# the line, where a holder can still take it.
_UNSAFE_WITHDRAW = ft_redis.Script(
    """
redis.call("DEL", ARGV[2] .. ARGV[1])
return {"withdrawn"}
"""
)


@override_settings(BOOKING_LOCK_WAIT=1)
def test_negative_control_without_the_lines_removal_check_a_503_is_booked_later(make_users, alice, monkeypatch):
    ticket = make_ticket(quantity=10)
    crowd = make_users(5, "ghost")
    monkeypatch.setattr(booking_line, "_WITHDRAW", _UNSAFE_WITHDRAW)

    answers = _stalled_line_sale(ticket, crowd, latecomer=alice)

    with pytest.raises(AssertionError, match="answered 503 was booked"):
        _assert_503s_never_booked(ticket, crowd, answers)


def test_an_idempotency_key_repeated_inside_one_batch_books_once_and_replays_the_answer(alice, bob):
    ticket = make_ticket(quantity=5)
    alice_token, bob_token = access_token(alice), access_token(bob)
    keyed = partial(_keyed_reserve, ticket_id=ticket.pk, key="order-7")

    with ExitStack() as stack, _lock_held(ticket.pk) as release:
        pending = _enter_in_order(
            stack, ticket.pk, [partial(keyed, alice_token), partial(keyed, bob_token), partial(keyed, alice_token)]
        )
        release()
        first, other_user, repeat = (result() for result in pending)

    assert (first.status, other_user.status, repeat.status) == (201, 201, 201)
    assert repeat.raw == first.raw and repeat.replayed and not first.replayed
    assert other_user.body["id"] != first.body["id"], "keys are per user"
    assert Reservation.objects.filter(ticket=ticket, user=alice).count() == 1
    assert issued_count(ticket.pk) == 2
    check_invariants()


@override_settings(BOOKING_BATCH_MAX=1)
def test_an_idempotency_key_repeated_across_batches_books_once_and_replays_the_answer(alice):
    ticket = make_ticket(quantity=5)
    token = access_token(alice)

    with ExitStack() as stack, _lock_held(ticket.pk) as release:
        # Both join before either is booked, so neither finds a stored answer on arrival.
        pending = _enter_in_order(stack, ticket.pk, [partial(_keyed_reserve, token, ticket_id=ticket.pk, key="k")] * 2)
        release()
        first, repeat = (result() for result in pending)

    assert (first.status, repeat.status) == (201, 201)
    assert repeat.raw == first.raw and repeat.replayed and not first.replayed
    assert Reservation.objects.filter(ticket=ticket).count() == 1 == issued_count(ticket.pk)
    check_invariants()


@dataclass(frozen=True)
class KeyedAnswer:
    status: int
    body: dict
    raw: bytes
    replayed: bool


def _keyed_reserve(token: str, *, ticket_id, key: str) -> KeyedAnswer:
    """Reserve with an Idempotency-Key; the answer with its raw bytes and whether it was a replay."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = client.post(reserve_path(ticket_id), HTTP_IDEMPOTENCY_KEY=key)
    return KeyedAnswer(
        response.status_code,
        response.json(),
        response.content,
        response.headers.get("Idempotent-Replayed") == "true",
    )
