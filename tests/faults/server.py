"""Gunicorn subprocesses for the fault and security tests, on this suite's ports (8181-8199).

A server serves pytest-django's test database (so tests that use it are transactional) with the
test run's secret key, Redis database and key prefix, unless the test overrides them. Every
server is stopped by its pid.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from django.conf import settings
from django.db import connection

from tickets.models import Ticket

PROJECT_DIR = Path(__file__).resolve().parents[2]
PORTS = range(8181, 8200)  # 8180 is scripts/fuzz.py's
START_DEADLINE_SECONDS = 60
LOCK_WAITER_DEADLINE_SECONDS = 15


def database_url() -> str:
    """Return a URL for the database Django uses now (the test database inside a test)."""
    db = settings.DATABASES["default"]
    credentials = quote(db["USER"] or "postgres", safe="")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def raw_connection(**kwargs: Any) -> psycopg.Connection:
    """Open a psycopg connection to the test database, outside Django's connection handling."""
    return psycopg.connect(database_url(), **kwargs)


@contextmanager
def ticket_row_locked(ticket_id: object) -> Iterator[None]:
    """Hold a ticket's row lock from a connection of our own until the block ends."""
    with raw_connection() as holder:
        holder.execute(f"SELECT id FROM {Ticket._meta.db_table} WHERE id = %s FOR UPDATE", [ticket_id])
        try:
            yield
        finally:
            holder.rollback()


def backend_waiting_for_a_lock() -> int:
    """Return the pid of a backend of the test database that waits for a lock, once there is one."""
    deadline = time.monotonic() + LOCK_WAITER_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            row = cursor.fetchone()
        if row:
            return row[0]
        time.sleep(0.05)
    raise AssertionError(f"no backend waited for a lock within {LOCK_WAITER_DEADLINE_SECONDS} s")


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """Return the lowest port of this suite's range that nothing listens on, for a server."""
    return next((port for port in PORTS if _port_is_free(port)), None) or _no_port()


def closed_port() -> int:
    """Return the highest free port of this suite's range: a dependency pointed there is down."""
    return next((port for port in reversed(PORTS) if _port_is_free(port)), None) or _no_port()


def _no_port() -> int:
    raise AssertionError(f"no free port in {PORTS.start}-{PORTS.stop - 1}")


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Server:
    """A gunicorn process serving fastticket.wsgi on a free port of this suite; a context manager."""

    def __init__(self, *, log_path: Path, workers: int = 1, **env: str) -> None:
        self.port = free_port()
        self.workers = workers
        self.log_path = log_path
        self.env = {
            **os.environ,
            "DJANGO_DEBUG": "false",
            "DJANGO_HTTPS": "false",
            "DATABASE_URL": database_url(),
            **env,
        }
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "Server":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start gunicorn and wait until /healthz answers, or fail with its log."""
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "fastticket.wsgi:application",
                    f"--bind=127.0.0.1:{self.port}",
                    f"--workers={self.workers}",
                    "--timeout=60",
                    "--access-logfile=-",
                    "--no-control-socket",
                ],
                cwd=PROJECT_DIR,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_until_serving()

    def wait_until_serving(self) -> None:
        deadline = time.monotonic() + START_DEADLINE_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"gunicorn exited with {self.process.returncode}:\n{self.log()}")
            try:
                if self.request("GET", "/healthz", timeout=2).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"gunicorn did not answer /healthz in {START_DEADLINE_SECONDS} s:\n{self.log()}")

    def stop(self) -> None:
        """Stop the master by pid (it stops its workers); kill it if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def worker_pids(self) -> list[int]:
        """Return the pids of the master's live workers."""
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in path.read_text().split()]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> Reply:
        """Send one request; a JSON body when `body` is given, a bearer token when `token` is."""
        all_headers = dict(headers or {})
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            all_headers["Content-Type"] = "application/json"
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=payload, headers=all_headers)
            response = conn.getresponse()
            return Reply(response.status, response.headers, response.read())
        finally:
            conn.close()
