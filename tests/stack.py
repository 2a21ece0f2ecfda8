"""The production topology for tests: scripts.harness.stack.Stack on the test database and Redis.

Every process gets a port from the OS; the stack serves pytest-django's test database (so tests
that use it are transactional) with the test run's secret key, Redis database and key prefix.
"""

import http.client
import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from scripts.harness.stack import Stack
from tests.concurrency.harness import Answer
from tests.servers import database_url


@contextmanager
def running_stack(run_dir: Path, **overrides: Any) -> Iterator[Stack]:
    """Start nginx, three FastTicket processes and PgBouncer on the test database; stop them after."""
    options = {"web_processes": 3, "workers": 2, "pool_size": 10, **overrides}
    env = {name: options.pop(name) for name in list(options) if name.isupper()}
    with Stack(
        database_url=database_url(),
        redis_url=settings.CACHES["default"]["LOCATION"],
        redis_prefix=settings.REDIS_KEY_PREFIX,
        run_dir=run_dir,
        secret_key=settings.SECRET_KEY,
        throttles_off=True,
        DJANGO_LOG_LEVEL="WARNING",
        GUNICORN_LOG_LEVEL="warning",
        **options,
        **env,
    ) as stack:
        yield stack


def call(
    base_url: str,
    method: str,
    path: str,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 30,
) -> tuple[Answer, http.client.HTTPMessage, float]:
    """Send one request over a new connection; return the answer, its headers and the seconds it took."""
    address = urlsplit(base_url)
    headers = {"Accept": "application/json", "Content-Type": "application/json", **(headers or {})}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=timeout)
    started = time.monotonic()
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
    finally:
        connection.close()
    try:
        parsed = json.loads(data) if data else None
    except ValueError:
        parsed = data.decode(errors="replace")
    seconds = time.monotonic() - started
    return Answer(response.status, parsed, response.headers.get("Retry-After")), response.headers, seconds


def raw_exchange(base_url: str, data: bytes, *, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes as a request and parse the status, headers and body of the answer."""
    address = urlsplit(base_url)
    with socket.create_connection((address.hostname, address.port), timeout=timeout) as sock:
        sock.sendall(data)
        answer = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
            head, separator, body = answer.partition(b"\r\n\r\n")
            if separator:
                lines = head.decode("latin-1").split("\r\n")
                fields = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
                if len(body) >= int(fields.get("Content-Length", 0)):
                    return int(lines[0].split()[1]), fields, body
    raise AssertionError(f"no complete answer: {answer[:200]!r}")


def access_log_count(log: Path, needle: str) -> int:
    """Count the lines of a gunicorn access log that contain `needle`."""
    return sum(needle in line for line in log.read_text(errors="replace").splitlines()) if log.exists() else 0
