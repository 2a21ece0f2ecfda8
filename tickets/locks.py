"""The per-ticket lock in Redis (python-redis-lock's key and protocol), taken before the ticket's row lock.

Bookings, cancellations and staff edits of a ticket take it, outside their transactions, so that a
flash crowd waits in Redis rather than in database connections. Bookings wait for it in the
ticket's booking line (reservations.line): whoever holds the lock books the waiting bookings in
batches. Cancels and staff edits (this module's `ticket_lock`) wait for it beside the line and
register as outside waiters first, so that a holder hands the lock over to them after its current
batch instead of keeping it for as long as bookings arrive; a batch never crosses them.

The lock is never needed for correctness: while Redis is unreachable it is skipped (the outage is
logged once per interval by fastticket.redis) and the row lock alone serialises the writers.
"""

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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
# How long a signal to the lock's waiters lives (python-redis-lock's default).
SIGNAL_EXPIRE_MS = 1000
# How long an answer or a wake-up waits in a booking's answer list for its reader.
ANSWER_EXPIRE_MS = 60_000


@dataclass(frozen=True)
class TicketKeys:
    """The Redis keys of one ticket's lock and booking line."""

    lock: str  # python-redis-lock's `lock:<name>`: the holder's id
    signal: str  # python-redis-lock's `lock-signal:<name>`: one push per release
    outside: str  # ZSET of the cancels and staff edits waiting for the lock (id -> deadline ms)
    line: str  # ZSET of the waiting bookings (reservation id -> arrival number)
    entries: str  # HASH reservation id -> the booking's request
    taken: str  # HASH reservation id -> the batch that took it
    arrivals: str  # the arrival counter
    answers: str  # prefix of each booking's answer list (+ reservation id)

    def all(self) -> list[str]:
        """Return the fixed keys in the order the line's scripts take them (KEYS[1..7])."""
        return [self.lock, self.signal, self.outside, self.line, self.entries, self.taken, self.arrivals]


def ticket_keys(ticket_id: UUID | str) -> TicketKeys:
    name = ft_redis.key("lock", "ticket", ticket_id)
    line = ft_redis.key("line", ticket_id)
    return TicketKeys(
        lock=f"lock:{name}",
        signal=f"lock-signal:{name}",
        outside=f"{name}:outside",
        line=line,
        entries=f"{line}:e",
        taken=f"{line}:f",
        arrivals=f"{line}:n",
        answers=ft_redis.key("line", "a", ""),
    )


# Functions shared by the lock's and the booking line's scripts, which take the keys as
# KEYS[1..7] = lock, signal, outside, line, entries, taken, arrivals.
LOCK_LUA = """
local function now_ms()
  local t = redis.call("TIME")
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Whether a cancel or staff edit waits for the lock (forgetting waiters whose wait has ended).
local function outside_waiting(outside, now)
  redis.call("ZREMRANGEBYSCORE", outside, "-inf", now)
  return redis.call("ZCARD", outside) > 0
end

-- Wake the first booking of the line, so that it takes the lock that was just freed.
local function line_wake_head(line, answers)
  local head = redis.call("ZRANGE", line, 0, 0)[1]
  if head then
    redis.call("RPUSH", answers .. head, "")
    redis.call("PEXPIRE", answers .. head, $ANSWER_EXPIRE)
  end
end

-- Release the lock if `id` holds it: python-redis-lock's unlock (delete, one signal for its
-- waiters), then wake the line's head unless a cancel or staff edit is the one to take it next.
local function lock_release(keys, id, now, answers)
  if redis.call("GET", keys[1]) ~= id then
    return 0
  end
  redis.call("DEL", keys[1])
  redis.call("DEL", keys[2])
  redis.call("LPUSH", keys[2], 1)
  redis.call("PEXPIRE", keys[2], $SIGNAL_EXPIRE)
  if not outside_waiting(keys[3], now) then
    line_wake_head(keys[4], answers)
  end
  return 1
end
""".replace("$ANSWER_EXPIRE", str(ANSWER_EXPIRE_MS)).replace("$SIGNAL_EXPIRE", str(SIGNAL_EXPIRE_MS))

# ARGV: id, lock ms, wait deadline ms, answers prefix. Keeps: an outside waiter is registered
# before it first tries, so that no line holder keeps the lock past its batch meanwhile.
_OUTSIDE_ACQUIRE = ft_redis.Script(
    LOCK_LUA
    + """
local now = now_ms()
redis.call("ZADD", KEYS[3], ARGV[3], ARGV[1])
redis.call("PEXPIRE", KEYS[3], math.max(1, ARGV[3] - now))
if redis.call("SET", KEYS[1], ARGV[1], "NX", "PX", ARGV[2]) then
  redis.call("ZREM", KEYS[3], ARGV[1])
  return 1
end
return 0
"""
)
# ARGV: id, answers prefix.
_OUTSIDE_GIVE_UP = ft_redis.Script(
    """
redis.call("ZREM", KEYS[3], ARGV[1])
return 0
"""
)
# ARGV: id, answers prefix.
_RELEASE = ft_redis.Script(
    LOCK_LUA
    + """
return lock_release(KEYS, ARGV[1], now_ms(), ARGV[2])
"""
)


def lock_expire_ms() -> int:
    """How long a held lock lives unless renewed (a safety net for a holder that died)."""
    return 1000 * max(settings.BOOKING_LOCK_EXPIRE, 1)


class TicketLock(redis_lock.Lock):
    """python-redis-lock's Lock on a ticket, with the booking line's hand-over.

    The lock's key, signal and id are python-redis-lock's. The booking line's scripts take it
    with the same `SET NX PX` and release it with the same unlock, plus two things of the line's
    own: a release wakes the line's first booking (`release`), and a cancel or staff edit
    registers as an outside waiter while it waits (`acquire_within`), which makes a line holder
    hand the lock over after its current batch.
    """

    def __init__(self, client, ticket_id: UUID | str) -> None:
        super().__init__(client, ft_redis.key("lock", "ticket", ticket_id), expire=lock_expire_ms() // 1000)
        self.keys = ticket_keys(ticket_id)

    @property
    def _held(self) -> bool:
        # Each TicketLock has a new random id, which cannot hold the lock before it acquires: skip
        # the library's GET before every acquire.
        return False

    @classmethod
    def register_scripts(cls, redis_client) -> None:
        # python-redis-lock registers its Lua scripts once per process, on whichever class asks
        # first: register them on its own Lock, which this class inherits them from.
        redis_lock.Lock.register_scripts(redis_client)

    def acquire_within(self, wait: float) -> bool:
        """Take the lock within `wait` seconds in all (0: one try) as an outside waiter; False when not granted.

        The library's `acquire(timeout=...)` starts its BLPOP timeout again each time a woken
        waiter loses SET NX to a newcomer, so it does not bound the wait that API.md promises.
        """
        deadline = time.monotonic() + wait
        args = [self.id, lock_expire_ms(), int(time.time() * 1000 + wait * 1000), self.keys.answers]
        try:
            while not _OUTSIDE_ACQUIRE(self._client, keys=self.keys.all(), args=args):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                # A release pushes one signal: wake up then, or at the deadline.
                self._client.blpop([self.keys.signal], max(min(remaining, ft_redis.WAIT_SLICE), 0.01))
            return True
        finally:
            _OUTSIDE_GIVE_UP(self._client, keys=self.keys.all(), args=[self.id, self.keys.answers])

    def release(self) -> None:
        """Release the lock and wake the line; a lock that expired under us raises NotAcquired."""
        if not _RELEASE(self._client, keys=self.keys.all(), args=[self.id, self.keys.answers]):
            raise redis_lock.NotAcquired(f"Lock {self._name} is not acquired or it already expired.")


@contextmanager
def ticket_lock(ticket_id: UUID | str) -> Iterator[None]:
    """Hold the ticket's Redis lock, or nothing while Redis is down; 503 busy when not granted."""
    client = ft_redis.client("locks")
    lock = None
    if client is not None:
        lock = TicketLock(client, ticket_id)
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
        logger.warning("ticket lock %s expired before release", lock._name)
    except ft_redis.REDIS_ERRORS as exc:
        ft_redis.mark_down(exc)
