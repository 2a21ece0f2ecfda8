"""Row locking with a bounded wait: a lock not granted in time is a 503 `busy`, never a 500."""

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg.errors
from django.conf import settings
from django.db import OperationalError, connection

from fastticket.errors import Busy


def set_local_lock_timeout(milliseconds: int | None = None) -> None:
    """Bound how long the current transaction waits for a row lock (SET LOCAL lock_timeout)."""
    ms = settings.BOOKING_LOCK_TIMEOUT_MS if milliseconds is None else milliseconds
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{int(ms)}ms"])


@contextmanager
def busy_on_lock_timeout() -> Iterator[None]:
    """Turn PostgreSQL's lock_timeout (SQLSTATE 55P03) inside the block into Busy."""
    try:
        yield
    except OperationalError as exc:
        if isinstance(exc.__cause__, psycopg.errors.LockNotAvailable):
            raise Busy(retry_after=1) from exc
        raise
