"""The booking lock in Redis failing: Redis killed mid-sale, a lock expiring under a slow holder, a held lock."""

import logging
import threading
import time
from functools import partial

import pytest
import redis_lock
from django.conf import settings
from django.test import override_settings
from django_redis import get_redis_connection

from fastticket import redis as ft_redis
from reservations.models import Reservation, ReservationStatus
from tests.concurrency.harness import (
    Answer,
    Attempts,
    api_book,
    api_reserve,
    assert_no_server_errors,
    assert_sold_exactly,
    check_invariants,
    confirmed_count,
    http_book,
    http_reserve,
    in_background,
    issued_count,
    sale,
)
from tests.concurrency.servers import app_redis
from tests.factories import access_token, make_ticket
from tests.servers import lock_waiters, row_lock_held, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def _lock_key(ticket_id) -> str:
    """Name python-redis-lock stores the ticket's booking lock under."""
    return f"lock:{ft_redis.key('lock', 'ticket', ticket_id)}"


def _sale_with_redis_killed_midway(private_redis, ticket, crowd, book, *, threads: int) -> list[Attempts]:
    """Run the sale and SIGKILL the private Redis once a quarter of the seats are answered 201.

    The booking whose 201 is the quarter's kills it before it returns, while the others are in
    flight: a poller could lose the race to a sale that batches sell out in a fraction of a second.
    """
    commands_before = private_redis.commands_processed()
    booked, at_kill = [], []
    counting = threading.Lock()

    def book_then_kill_at_a_quarter(user, token) -> Answer:
        answer = book(user, token)
        if answer.status == 201:
            with counting:
                booked.append(user.pk)
                if len(booked) == ticket.quantity // 4:
                    at_kill.append((issued_count(ticket.pk), private_redis.commands_processed() - commands_before))
                    private_redis.kill()
        return answer

    attempts = sale(book_then_kill_at_a_quarter, crowd, threads=threads)
    assert at_kill, "a quarter of the seats was never sold"
    sold_at_kill, commands_used = at_kill[0]
    assert commands_used > 0, "the app never used the private Redis"
    assert sold_at_kill < ticket.quantity, "the sale ended before Redis was killed"
    return attempts


def _assert_booking_takes_the_lock_in(private_redis, ticket, book) -> None:
    """Hold the ticket row so that a booking stays inside its Redis lock, and find that lock in Redis."""
    watcher = private_redis.client()
    key = _lock_key(ticket.pk)
    with row_lock_held(ticket.pk) as release, in_background(book) as answer:
        wait_until(lambda: watcher.exists(key), timeout=10, what="the booking lock in the restarted Redis")
        commands_while_held = private_redis.commands_processed()
        release()
        booked = answer()
    assert booked.status == 201, booked
    assert private_redis.commands_processed() > commands_while_held
    assert not watcher.exists(key), "the lock was not released"
    assert issued_count(ticket.pk) == 1 == confirmed_count(ticket.pk)


@pytest.mark.slow
def test_sale_survives_redis_killed_midway_and_locks_again_after_restart(
    private_redis, racers, make_users, alice, caplog
):
    ticket = make_ticket(quantity=60)
    crowd = make_users(150, "fan")
    caplog.set_level(logging.WARNING, logger="fastticket.redis")

    with app_redis(private_redis.url), override_settings(BOOKING_LOCK_TIMEOUT_MS=8000):
        book = partial(api_book, ticket_id=ticket.pk)
        attempts = _sale_with_redis_killed_midway(private_redis, ticket, crowd, book, threads=racers)
        assert_sold_exactly(ticket, crowd, attempts, seats=60)
        assert "redis unavailable" in caplog.text

        private_redis.start()
        time.sleep(settings.REDIS_RETRY_AFTER + 0.2)  # the breaker closes by itself
        second = make_ticket(quantity=5)
        _assert_booking_takes_the_lock_in(private_redis, second, partial(api_reserve, access_token(alice), second.pk))
    check_invariants()


@pytest.mark.slow
def test_sale_across_gunicorn_workers_survives_redis_killed_midway(
    private_redis, start_gunicorn, racers, make_users, alice
):
    ticket = make_ticket(quantity=40)
    crowd = make_users(150, "fan")
    server = start_gunicorn(REDIS_URL=private_redis.url)

    book = partial(http_book, server, ticket_id=ticket.pk)
    attempts = _sale_with_redis_killed_midway(private_redis, ticket, crowd, book, threads=racers)
    assert_sold_exactly(ticket, crowd, attempts, seats=40)

    private_redis.start()
    time.sleep(settings.REDIS_RETRY_AFTER + 0.2)  # each worker's breaker closes by itself
    second = make_ticket(quantity=5)
    _assert_booking_takes_the_lock_in(
        private_redis, second, partial(http_reserve, server, access_token(alice), second.pk)
    )
    assert "redis unavailable" in server.log()
    assert "Traceback" not in server.log()
    check_invariants()


def test_lock_expiring_under_a_slow_holder_still_sells_each_seat_once(make_users, alice, caplog):
    seats = 3
    ticket = make_ticket(quantity=seats)
    crowd = make_users(8, "fan")
    shared = get_redis_connection("default")
    key = _lock_key(ticket.pk)
    caplog.set_level(logging.WARNING, logger="reservations.services")

    with (
        # The lock expires after 1 s; every booking waits up to 5 s (its batch's row-lock wait too).
        override_settings(BOOKING_LOCK_EXPIRE=1, BOOKING_LOCK_WAIT=5, BOOKING_LOCK_TIMEOUT_MS=8000),
        row_lock_held(ticket.pk) as release,
        in_background(partial(api_reserve, access_token(alice), ticket.pk)) as slow,
    ):
        # Alice holds the Redis lock and sits in her transaction, waiting for the row this test holds.
        wait_until(lambda: shared.exists(key), timeout=10, what="alice's Redis lock")
        wait_until(lock_waiters, timeout=10, what="alice waiting on the row lock")
        wait_until(lambda: not shared.exists(key), timeout=10, what="alice's Redis lock to expire")
        with in_background(partial(sale, partial(api_book, ticket_id=ticket.pk), crowd, threads=len(crowd))) as rest:
            wait_until(lambda: len(lock_waiters()) >= 2, timeout=10, what="a second booker inside the critical section")
            release()
            alice_answer = slow()
            attempts = rest()

    assert alice_answer.status == 201, alice_answer
    assert Reservation.objects.get(pk=alice_answer.body["id"]).status == ReservationStatus.CONFIRMED
    assert_no_server_errors(attempts)
    created = [attempt.final for attempt in attempts if attempt.final.status == 201]
    assert len(created) == seats - 1
    assert all(attempt.final.code in {"sold_out", "busy"} for attempt in attempts if attempt.final.status != 201)
    assert issued_count(ticket.pk) == seats == confirmed_count(ticket.pk)
    assert "expired before release" in caplog.text
    check_invariants()


def test_booking_waits_while_another_request_holds_the_redis_lock(alice, caplog):
    ticket = make_ticket(quantity=5)
    caplog.set_level(logging.WARNING, logger="fastticket.redis")
    holder = redis_lock.Lock(
        get_redis_connection("locks"), ft_redis.key("lock", "ticket", ticket.pk), expire=settings.BOOKING_LOCK_WAIT * 3
    )
    assert holder.acquire(blocking=False)
    with in_background(partial(api_reserve, access_token(alice), ticket.pk)) as answer:
        # Longer than the cache's socket timeout, shorter than BOOKING_LOCK_WAIT.
        time.sleep(min(1.5, settings.BOOKING_LOCK_WAIT / 2))
        issued_while_held = issued_count(ticket.pk)
        holder.release()
        booked = answer()

    assert issued_while_held == 0, "the booking went past a held Redis lock"
    assert booked.status == 201, booked
    assert "redis unavailable" not in caplog.text
    check_invariants()
