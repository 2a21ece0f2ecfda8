"""The per-ticket Redis lock: the wait for it ends at BOOKING_LOCK_WAIT, as API.md promises."""

import threading
import time

import pytest

from fastticket import redis as ft_redis
from fastticket.errors import Busy
from tickets.locks import ticket_lock

TICKET = "lock-wait-ticket"


def test_lock_wait_ends_at_the_limit_even_when_a_newcomer_takes_the_released_lock(settings):
    settings.BOOKING_LOCK_WAIT = 2
    settings.BOOKING_LOCK_EXPIRE = 5
    name = f"lock:{ft_redis.key('lock', 'ticket', TICKET)}"
    signal = f"lock-signal:{ft_redis.key('lock', 'ticket', TICKET)}"
    redis = ft_redis.client("locks")
    redis.set(name, "first-holder", ex=5)

    def hand_over_to_a_newcomer_then_release() -> None:
        # The holder releases (DEL and a wake-up signal) and a newcomer's SET NX lands before the
        # woken waiter's; the newcomer releases 1.5 s later.
        time.sleep(1.5)
        redis.pipeline(transaction=True).delete(name).rpush(signal, 1).set(name, "newcomer", ex=5).execute()
        time.sleep(1.5)
        redis.pipeline(transaction=True).delete(name).rpush(signal, 1).execute()

    others = threading.Thread(target=hand_over_to_a_newcomer_then_release)
    others.start()
    started = time.monotonic()
    try:
        with pytest.raises(Busy), ticket_lock(TICKET):
            pass
        waited = time.monotonic() - started
    finally:
        others.join()
        redis.delete(name, signal)

    assert 1.9 <= waited < 2.5


def test_lock_is_granted_once_its_holder_releases_it_within_the_wait(settings):
    settings.BOOKING_LOCK_WAIT = 2
    name = f"lock:{ft_redis.key('lock', 'ticket', TICKET)}"
    signal = f"lock-signal:{ft_redis.key('lock', 'ticket', TICKET)}"
    redis = ft_redis.client("locks")
    redis.set(name, "first-holder", ex=5)
    releaser = threading.Timer(0.3, lambda: redis.pipeline(transaction=True).delete(name).rpush(signal, 1).execute())
    releaser.start()
    started = time.monotonic()
    try:
        with ticket_lock(TICKET):
            waited = time.monotonic() - started
            held_by_us = redis.get(name) not in (None, b"first-holder")
    finally:
        releaser.join()
        redis.delete(name, signal)

    assert held_by_us
    assert 0.25 <= waited < 1.5
