"""The per-ticket lock in Redis (python-redis-lock), taken before the ticket's row lock.

Bookings, cancellations and staff edits of a ticket take it, outside their transactions, so that a
flash crowd waits in Redis rather than in database connections. It is never needed for
correctness: while Redis is unreachable the lock is skipped (the outage is logged once per
interval by fastticket.redis) and the row lock alone serialises the writers.
"""

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

import redis_lock
from django.conf import settings
from prometheus_client import Histogram

from fastticket import redis as ft_redis
from fastticket.errors import Busy

logger = logging.getLogger(__name__)

LOCK_WAIT = Histogram(
    "fastticket_booking_lock_wait_seconds",
    "Time spent waiting for a ticket's Redis lock.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


class TicketLock(redis_lock.Lock):
    """python-redis-lock's Lock with a wait that really ends when BOOKING_LOCK_WAIT says.

    It also skips the library's "do I already hold it?" GET before every acquire: each booking
    makes a new Lock with a new random id, which cannot hold the lock yet.
    """

    @property
    def _held(self) -> bool:
        return False

    @classmethod
    def register_scripts(cls, redis_client) -> None:
        # python-redis-lock registers its Lua scripts once per process, on whichever class asks
        # first: register them on its own Lock, which this class inherits them from.
        redis_lock.Lock.register_scripts(redis_client)

    def acquire_within(self, wait: float) -> bool:
        """Take the lock within `wait` seconds in all (0: one try); False when not granted.

        The library's `acquire(timeout=...)` starts its BLPOP timeout again each time a woken
        waiter loses SET NX to a newcomer, so it does not bound the wait that API.md promises.
        """
        deadline = time.monotonic() + wait
        while not self._client.set(self._name, self._id, nx=True, ex=self._expire):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            # A release pushes one signal: wake up then, or at the deadline.
            self._client.blpop(self._signal, max(remaining, 0.01))
        return True


@contextmanager
def ticket_lock(ticket_id: UUID | str) -> Iterator[None]:
    """Hold the ticket's Redis lock, or nothing while Redis is down; 503 busy when not granted."""
    client = ft_redis.client("locks")
    lock = None
    if client is not None:
        lock = TicketLock(
            client,
            ft_redis.key("lock", "ticket", ticket_id),
            expire=max(settings.BOOKING_LOCK_EXPIRE, settings.BOOKING_LOCK_WAIT),
        )
        started = time.monotonic()
        try:
            acquired = lock.acquire_within(max(settings.BOOKING_LOCK_WAIT, 0))
        except ft_redis.REDIS_ERRORS as exc:
            ft_redis.mark_down(exc)
            lock = None
        else:
            LOCK_WAIT.observe(time.monotonic() - started)
            if not acquired:
                raise Busy(retry_after=1)
    try:
        yield
    finally:
        if lock is not None:
            _release(lock)


def _release(lock: TicketLock) -> None:
    try:
        lock.release()
    except redis_lock.NotAcquired:
        # The lock expired while we held it; the row lock kept the write correct.
        logger.warning("booking lock %s expired before release", lock._name)
    except ft_redis.REDIS_ERRORS as exc:
        ft_redis.mark_down(exc)
