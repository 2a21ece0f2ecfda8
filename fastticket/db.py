"""Row locking with a bounded wait: a lock not granted in time is a 503 `busy`, never a 500.

The wait is bounded by PostgreSQL's `lock_timeout` (BOOKING_DB_LOCK_TIMEOUT_MS, by default the
booking lock wait), which every session starts with: sent at connect by settings.py, or behind a
transaction pooler the role's default in the database (fastticket.pooling).
"""

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg.errors
from django.db import OperationalError

from fastticket.errors import Busy


@contextmanager
def busy_on_lock_timeout() -> Iterator[None]:
    """Turn PostgreSQL's lock_timeout (SQLSTATE 55P03) inside the block into Busy."""
    try:
        yield
    except OperationalError as exc:
        if isinstance(exc.__cause__, psycopg.errors.LockNotAvailable):
            raise Busy(retry_after=1) from exc
        raise
