"""Run the app in real processes: gunicorn servers and one-off `python` or `manage.py` commands.

Servers bind only to this suite's ports (8120-8129) and are stopped by pid.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings

PROJECT_DIR = Path(__file__).resolve().parents[2]
FLOW_PORT = 8120
HEALTHY_PORT = 8121
REDIS_DOWN_PORT = 8122
DATABASE_DOWN_PORT = 8123
BODIES_PORT = 8124
# Nothing listens here: a dependency pointed at one of these is down (connection refused).
CLOSED_PORTS = (8128, 8129)
START_DEADLINE_SECONDS = 60

# settings.py reads a local .env for any variable the environment lacks, so a test that removes a
# variable to see its default cannot do so while one exists.
needs_no_local_env_file = pytest.mark.skipif(
    (PROJECT_DIR / ".env").is_file(), reason="a local .env may supply the variable this test removes"
)


def child_env(**overrides: str | None) -> dict[str, str]:
    """Return this process's environment with overrides applied; None removes a variable."""
    env = dict(os.environ)
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run_python(code: str, **env: str | None) -> subprocess.CompletedProcess:
    """Run `python -c code` in the project directory with Django settings configured."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_DIR,
        env=child_env(DJANGO_SETTINGS_MODULE="fastticket.settings", **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def run_manage(*args: str, **env: str | None) -> subprocess.CompletedProcess:
    """Run `manage.py args` in the project directory."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_DIR,
        env=child_env(**env),
        capture_output=True,
        text=True,
        timeout=180,
    )


def database_url() -> str:
    """Return a URL for the database Django uses now (pytest-django's test database in a test)."""
    db = settings.DATABASES["default"]
    credentials = quote(db["USER"], safe="")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def port_is_closed(port: int) -> bool:
    """Tell whether nothing accepts connections on 127.0.0.1:port."""
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) != 0


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)


class GunicornServer:
    """A gunicorn process serving fastticket.wsgi on one port; use as a context manager."""

    def __init__(self, port: int, *, log_path: Path, workers: int = 1, **env: str | None) -> None:
        self.port = port
        self.workers = workers
        self.log_path = log_path
        self.env = child_env(DJANGO_DEBUG="false", DJANGO_HTTPS="false", **env)
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "GunicornServer":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start gunicorn and wait until /healthz answers 200, or fail with its log."""
        assert port_is_closed(self.port), f"port {self.port} is already in use"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "fastticket.wsgi:application",
                    "--bind",
                    f"127.0.0.1:{self.port}",
                    "--workers",
                    str(self.workers),
                    "--timeout",
                    "60",
                    # The default control socket is one path per machine, shared with other servers.
                    "--no-control-socket",
                ],
                cwd=PROJECT_DIR,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
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
        self.stop()
        raise AssertionError(f"gunicorn did not answer /healthz within {START_DEADLINE_SECONDS} s:\n{self.log()}")

    def stop(self) -> None:
        """Stop the gunicorn master by pid (it stops its workers), killing it if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

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
        """Send one HTTP request over a new connection and read the whole answer.

        With chunked, the body goes as one chunk with `Transfer-Encoding: chunked` and no
        Content-Length.
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
        return Reply(response.status, dict(response.getheaders()), data, time.monotonic() - started)
