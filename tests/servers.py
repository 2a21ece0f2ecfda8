"""Run the app in real processes for tests: gunicorn on the test database, and that database from beside it.

Each folder keeps its own ports (tests/ops and tests/api 8120-8129, tests/concurrency 8145-8147,
tests/faults and tests/security 8181-8199). Every process started here is stopped by its pid.
"""

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote

import psutil
import psycopg
from django.conf import settings

from tickets.models import Ticket

PROJECT_DIR = Path(__file__).resolve().parents[1]
START_DEADLINE_SECONDS = 60
STOP_DEADLINE_SECONDS = 30
# What a request raises when the server closes the connection without an answer (a worker died).
DISCONNECTED = (ConnectionError, http.client.HTTPException)


def child_env(**overrides: str | None) -> dict[str, str]:
    """Return this process's environment with overrides applied; None removes a variable."""
    env = dict(os.environ)
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def database_url() -> str:
    """Return a URL for the database Django uses now (pytest-django's test database in a test)."""
    db = settings.DATABASES["default"]
    credentials = quote(db.get("USER") or "postgres", safe="")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{credentials}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def server_env(**overrides: str | None) -> dict[str, str]:
    """Return the environment of a server of the test database with DEBUG and HTTPS off, plus overrides."""
    return child_env(**{"DJANGO_DEBUG": "false", "DJANGO_HTTPS": "false", "DATABASE_URL": database_url(), **overrides})


def port_is_free(port: int) -> bool:
    """Tell whether a server could bind 127.0.0.1:port, so nothing listens there."""
    with socket.socket() as sock:
        # As a server binds: past connections of an earlier server in TIME_WAIT do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port(ports: Sequence[int]) -> int:
    """Return the first port of `ports` that nothing listens on."""
    for port in ports:
        if port_is_free(port):
            return port
    raise AssertionError(f"no free port in {ports}")


def wait_until(predicate: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.02) -> Any:
    """Poll until predicate() is truthy and return its value; fail the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)


class ServerProcess:
    """A server on one port logging to a file; a context manager that stops it by pid."""

    name = "server"

    def __init__(self, port: int, *, log_path: Path, env: dict[str, str] | None = None) -> None:
        self.port = port
        self.log_path = log_path
        self.env = env
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def command(self) -> list[str]:
        raise NotImplementedError

    def is_ready(self) -> bool:
        raise NotImplementedError

    def start(self) -> Self:
        """Start the server and wait until it is ready, or stop it and fail with its log."""
        assert port_is_free(self.port), f"port {self.port} is already in use"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=PROJECT_DIR,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self.wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_until_ready(self) -> None:
        """Wait until the server is ready; fail with its log if it exits or the deadline passes."""
        deadline = time.monotonic() + START_DEADLINE_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.log()}")
            if self.is_ready():
                return
            time.sleep(0.1)
        raise AssertionError(f"{self.name} was not ready within {START_DEADLINE_SECONDS} s:\n{self.log()}")

    def stop(self) -> None:
        """Stop the server by pid (SIGTERM); SIGKILL it and its children if they linger."""
        if self.process is None or self.process.poll() is not None:
            return
        children = self.children()
        self.process.terminate()
        try:
            self.process.wait(timeout=STOP_DEADLINE_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        for child in children:
            with suppress(psutil.NoSuchProcess):
                child.kill()

    def children(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.process.pid).children()
        except psutil.NoSuchProcess:
            return []

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class GunicornServer(ServerProcess):
    """fastticket.wsgi under gunicorn, serving the test database unless `env` names another."""

    name = "gunicorn"

    def __init__(
        self, port: int, *, log_path: Path, workers: int = 1, options: Sequence[str] = (), **env: str | None
    ) -> None:
        super().__init__(port, log_path=log_path, env=server_env(**env))
        self.workers = workers
        self.options = options

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "fastticket.wsgi:application",
            f"--bind=127.0.0.1:{self.port}",
            f"--workers={self.workers}",
            "--timeout=60",
            "--access-logfile=-",
            # The default control socket is one path per machine, shared with other servers.
            "--no-control-socket",
            *self.options,
        ]

    def is_ready(self) -> bool:
        """Tell whether every worker is up and /healthz answers 200."""
        if len(self.worker_pids()) != self.workers:
            return False
        try:
            return self.request("GET", "/healthz", timeout=5).status == 200
        except (OSError, http.client.HTTPException):
            return False

    def worker_pids(self) -> list[int]:
        """Return the pids of the master's live workers."""
        return [child.pid for child in self.children()]

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
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
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
