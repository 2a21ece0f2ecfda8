"""Redis access for the parts that must survive a Redis outage: the booking line, locks and mirrors.

Redis only speeds booking up; the database is the guarantee. When Redis refuses or times out,
callers carry on without it. A short circuit breaker skips Redis for REDIS_RETRY_AFTER seconds
after a failure (so an outage costs one timeout, not one per request), and the outage is logged at
most once per REDIS_OUTAGE_LOG_INTERVAL.

Every call has a deadline: the "default" client's socket timeout is REDIS_TIMEOUT; the "locks"
client, which blocks in BLPOP, waits at most WAIT_SLICE seconds per call plus REDIS_TIMEOUT, so a
stalled Redis costs a booking at most that much beyond its own wait.
"""

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django_redis import get_redis_connection
from django_redis.pool import ConnectionFactory
from redis import Redis
from redis.commands.core import Script as RedisScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger("fastticket.redis")

REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)

T = TypeVar("T")

# The longest single BLPOP of a waiting booking; the "locks" client's socket timeout adds
# REDIS_TIMEOUT to it (settings.py).
WAIT_SLICE = 0.5


class RedisUnavailable(Exception):
    """Redis is down (or the breaker says so) where the caller cannot do without it."""


_down_until = 0.0
_last_logged = 0.0


class LockConnectionFactory(ConnectionFactory):
    """Keep the booking locks' connection pools apart from the cache's.

    django-redis keeps one pool per URL for all aliases, so without this the "locks" alias would
    wait in BLPOP with the cache's short socket timeout (a lock wait longer than it would look like
    a Redis outage), or the cache would get the locks' long one, whichever connected first.
    """

    _pools: dict = {}


def key(*parts: object) -> str:
    """Build a key under this deployment's prefix."""
    return ":".join([settings.REDIS_KEY_PREFIX, *map(str, parts)])


def client(alias: str = "default") -> Redis | None:
    """Return a Redis client, or None while the breaker says Redis is down."""
    if time.monotonic() < _down_until:
        return None
    return get_redis_connection(alias)


def mark_down(exc: BaseException) -> None:
    """Record a failed Redis call: open the breaker and log the outage once per interval."""
    global _down_until, _last_logged
    now = time.monotonic()
    _down_until = now + settings.REDIS_RETRY_AFTER
    if now - _last_logged >= settings.REDIS_OUTAGE_LOG_INTERVAL or _last_logged == 0.0:
        _last_logged = now
        logger.warning(
            "redis unavailable (%s); booking continues on database locks alone",
            exc.__class__.__name__,
        )


def call(fn: Callable[[Redis], T], default: T, alias: str = "default") -> T:
    """Run fn with a client; on any Redis failure return default instead of raising."""
    redis = client(alias)
    if redis is None:
        return default
    try:
        return fn(redis)
    except REDIS_ERRORS as exc:
        mark_down(exc)
        return default


def reset_breaker() -> None:
    """Forget a recorded outage (tests, and after a deliberate reconnect)."""
    global _down_until, _last_logged
    _down_until = 0.0
    _last_logged = 0.0


class Script:
    """A Lua script, run with EVALSHA on whichever client or pipeline calls it (loaded when missing)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._script: RedisScript | None = None

    def __call__(self, client: Redis, *, keys: list[str], args: list) -> object:
        if self._script is None:
            self._script = RedisScript(client, self.source)
        return self._script(keys=keys, args=args, client=client)
