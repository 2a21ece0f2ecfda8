"""Refused `reserve` answers counted per ticket, per second and per code, in Redis.

Layout (kept simple so that a Lua script can write it as well as Python):

    key    <REDIS_KEY_PREFIX>:refusals:<ticket id>:<unix second>   (fastticket.redis.key)
    type   HASH, fields `sold_out`, `busy`, `not_admitted`, each an integer count
    write  HINCRBY key <code> 1, then EXPIRE key 360
    TTL    360 seconds: the sales API shows the last 300, the rest is slack for clocks

The booking line's scripts count the refusals they decide (not_admitted, busy, and the sold_out
and busy answers of a batch) in the same script, with Redis' clock. A refusal the database
decided before any Redis call (a sold-out ticket read in `reserve`'s first statement) is noted in
this process (`refusal_note`, no round trip) and written, with the second it happened in, by a
flusher thread of the process within FLUSH_SECONDS: so counting costs no refusal a round trip of
its own. A process that exits (a gunicorn worker recycled after max_requests, or stopped on a
deploy) flushes what it noted at exit. The counts are for dashboards: those of a process killed
before its flush, or written while Redis is unreachable, are lost, and the sales API says
`refused: null` while it is.
"""

import atexit
import os
import threading
import time
from collections import Counter
from uuid import UUID

from fastticket import redis as ft_redis

REFUSAL_CODES = ("sold_out", "busy", "not_admitted")
REFUSAL_TTL_SECONDS = 360


def refusal_prefix(ticket_id: UUID | str) -> str:
    """Return what a ticket's refusal keys start with (the booking line's scripts add the second)."""
    return ft_redis.key("refusals", ticket_id, "")


def refusal_key(ticket_id: UUID | str, second: int) -> str:
    """Return the key of a ticket's refusal counts in one unix second."""
    return f"{refusal_prefix(ticket_id)}{int(second)}"


FLUSH_SECONDS = 0.5

_noted: Counter[tuple[str, int, str]] = Counter()
_noted_lock = threading.Lock()
_flusher_pid: int | None = None


def refusal_note(*, ticket_id: UUID | str, code: str) -> None:
    """Count one refusal of this second in this process; the flusher writes it to Redis soon."""
    if code not in REFUSAL_CODES:
        raise ValueError(f"not a counted refusal code: {code!r}")
    with _noted_lock:
        _noted[(str(ticket_id), int(time.time()), code)] += 1
    if _flusher_pid != os.getpid():
        _start_flusher()


def refusals_flush() -> None:
    """Write the refusals noted in this process to Redis (dropped if Redis is unreachable)."""
    with _noted_lock:
        noted = dict(_noted)
        _noted.clear()
    if not noted:
        return

    def write(redis) -> None:
        pipeline = redis.pipeline(transaction=False)
        for (ticket_id, second, code), by in noted.items():
            key = refusal_key(ticket_id, second)
            pipeline.hincrby(key, code, by)
            pipeline.expire(key, REFUSAL_TTL_SECONDS)
        pipeline.execute()

    ft_redis.call(write, None)


def _start_flusher() -> None:
    global _flusher_pid
    with _noted_lock:
        if _flusher_pid == os.getpid():
            return
        _flusher_pid = os.getpid()
    threading.Thread(target=_flush_forever, name="refusals-flusher", daemon=True).start()
    # Once per process that noted anything: a forked worker registers its own.
    atexit.register(refusals_flush)


def _flush_forever() -> None:
    while True:
        time.sleep(FLUSH_SECONDS)
        refusals_flush()


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
