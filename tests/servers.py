"""Run the app in real processes for tests, through the project's harness (scripts/harness).

GunicornServer serves pytest-django's test database on a port the operating system hands out (a
socket bound here and passed to gunicorn as `fd://N`), so runs on one machine never collide; every
process is stopped by its pid (SIGTERM, then SIGKILL of it and its children). Also: the test
database from beside the servers (row locks, lock waiters).
"""

import http.client
import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from django.conf import settings

from scripts import harness
from tickets.models import Ticket

PROJECT_DIR = harness.ROOT
# What a request raises when the server closes the connection without an answer (a worker died).
DISCONNECTED = (ConnectionError, http.client.HTTPException)

child_env = harness.child_env
closed_port = harness.closed_port
wait_until = harness.wait_until


def database_url() -> str:
    """Return a URL for the database Django uses now (pytest-django's test database in a test)."""
    db = settings.DATABASES["default"]
    credentials = quote(db.get("USER") or "postgres", safe="")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{credentials}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def server_env(**overrides: str | None) -> dict[str, str]:
    """Return the environment of a server of the test database with DEBUG and HTTPS off, plus overrides."""
    return harness.server_env(database_url=database_url(), **overrides)


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)


class GunicornServer(harness.Gunicorn):
    """fastticket.wsgi under gunicorn, serving the test database unless `env` names another; a context manager."""

    def __init__(self, *, log_path: Path, workers: int = 1, options: Sequence[str] = (), **env: str | None) -> None:
        options = ("--timeout=60", "--access-logfile=-", *options)
        super().__init__(log_path=log_path, env=server_env(**env), workers=workers, options=options)

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        chunked: bool = False,
        timeout: float = 30,
    ) -> Reply:
        """Send one request over a new connection and read the whole answer.

        A JSON body when `json_body` is given (with chunked, as one chunk with `Transfer-Encoding:
        chunked` and no Content-Length), a bearer token when `token` is.
        """
        headers = {"Accept": "application/json", **(headers or {})}
        body = None
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        started = time.monotonic()
        try:
            if chunked:
                connection.request(method, path, body=iter([body or b""]), headers=headers, encode_chunked=True)
            else:
                connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        return Reply(response.status, response.headers, data, time.monotonic() - started)


# The test database beside the servers --------------------------------------------------------------


@contextmanager
def row_lock_held(ticket_id: object) -> Iterator[Callable[[], None]]:
    """Hold the ticket's row lock from a connection of our own (SELECT ... FOR UPDATE); yield its early release."""
    with psycopg.connect(database_url()) as holder:
        holder.execute(f"SELECT id FROM {Ticket._meta.db_table} WHERE id = %s FOR UPDATE", [ticket_id])
        try:
            yield holder.rollback
        finally:
            holder.rollback()


def lock_waiters() -> list[tuple[int, int | None]]:
    """Return (backend pid, client port) of this database's sessions that wait on a lock."""
    with psycopg.connect(database_url(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid, client_port FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
            [settings.DATABASES["default"]["NAME"]],
        ).fetchall()
    return [(pid, port) for pid, port in rows]


def backend_waiting_for_a_lock() -> int:
    """Return the pid of a backend of the test database that waits for a lock, once there is one."""
    return wait_until(lock_waiters, timeout=15, what="a backend waiting for a lock", interval=0.05)[0][0]
