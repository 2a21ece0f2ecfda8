"""Refused `reserve` answers counted per ticket, per second and per code, in Redis.

Layout (kept simple so that a Lua script can write it as well as Python):

    key    <REDIS_KEY_PREFIX>:refusals:<ticket id>:<unix second>   (fastticket.redis.key)
    type   HASH, fields `sold_out`, `busy`, `not_admitted`, each an integer count
    write  HINCRBY key <code> 1, then EXPIRE key 360
    TTL    360 seconds: the sales API shows the last 300, the rest is slack for clocks

The second is the writer's wall clock (`int(time.time())`; a Lua script may use Redis' TIME).
Counting costs the refusal path no round trip of its own: `refusal_count` only queues the two
commands on a pipeline the caller already sends. The counts are for dashboards: a refusal that is
not counted while Redis is unreachable is lost, and the sales API says so with `refused: null`.
"""

import time
from uuid import UUID

from redis.client import Pipeline

from fastticket import redis as ft_redis

REFUSAL_CODES = ("sold_out", "busy", "not_admitted")
REFUSAL_TTL_SECONDS = 360


def refusal_prefix(ticket_id: UUID | str) -> str:
    """Return what a ticket's refusal keys start with (the booking line's scripts add the second)."""
    return ft_redis.key("refusals", ticket_id, "")


def refusal_key(ticket_id: UUID | str, second: int) -> str:
    """Return the key of a ticket's refusal counts in one unix second."""
    return f"{refusal_prefix(ticket_id)}{int(second)}"


def refusal_count(pipeline: Pipeline, *, ticket_id: UUID | str, code: str, second: int | None = None) -> None:
    """Queue the HINCRBY and EXPIRE of one refusal on `pipeline`; the caller executes it."""
    if code not in REFUSAL_CODES:
        raise ValueError(f"not a counted refusal code: {code!r}")
    key = refusal_key(ticket_id, int(time.time()) if second is None else second)
    pipeline.hincrby(key, code, 1)
    pipeline.expire(key, REFUSAL_TTL_SECONDS)


def refusals_per_second(*, ticket_id: UUID | str, since: int, until: int) -> dict[int, dict[str, int]] | None:
    """Return the refusals of each second from `since` to `until` (both included) that had any.

    One round trip (a pipeline of HGETALLs). Each value has every code of REFUSAL_CODES. None
    while Redis is unreachable.
    """
    seconds = range(int(since), int(until) + 1)

    def read(redis) -> list[dict[bytes, bytes]]:
        pipeline = redis.pipeline(transaction=False)
        for second in seconds:
            pipeline.hgetall(refusal_key(ticket_id, second))
        return pipeline.execute()

    hashes = ft_redis.call(read, None)
    if hashes is None:
        return None
    counts: dict[int, dict[str, int]] = {}
    for second, fields in zip(seconds, hashes, strict=True):
        if fields:
            values = {name.decode(): int(value) for name, value in fields.items()}
            counts[second] = {code: values.get(code, 0) for code in REFUSAL_CODES}
    return counts
