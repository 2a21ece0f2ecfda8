"""Real servers for the cross-process races: gunicorn set up for racing, and a private redis-server."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.test import override_settings
from django_redis.pool import ConnectionFactory

from fastticket import redis as ft_redis
from scripts import harness
from tests.servers import GunicornServer


def race_gunicorn(*, log_path: Path, **env: str) -> GunicornServer:
    """Serve the app from 4 preloaded sync workers on the test database, this run's Redis and no throttles.

    The database lock wait is raised to 8 s so that a test can find and kill a worker that waits on a
    row lock before it would give up with 503.
    """
    race_env = {
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
        "REDIS_URL": settings.CACHES["default"]["LOCATION"],
        "REDIS_KEY_PREFIX": settings.REDIS_KEY_PREFIX,
        **harness.THROTTLES_OFF,
        "DJANGO_LOG_LEVEL": "WARNING",
        "BOOKING_DB_LOCK_TIMEOUT_MS": "8000",
    }
    options = ("--worker-class=sync", "--preload", "--graceful-timeout=5")
    return GunicornServer(log_path=log_path, workers=4, options=options, **{**race_env, **env})


class PrivateRedis(harness.RedisServer):
    """A redis-server of our own on a port from the OS that a test may kill and restart.

    Without persistence, unless `append_only`: then every write goes to an append-only file in
    `data_dir`, fsynced before it is answered (`--appendfsync always`), so a SIGKILL loses nothing,
    as the waiting room's Redis should run.
    """

    def __init__(self, *, append_only: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        if append_only and self.data_dir is None:
            raise ValueError("an append-only Redis needs a data_dir")
        self.append_only = append_only

    def command(self) -> list[str]:
        command = super().command()
        if self.append_only:
            at = command.index("--appendonly")
            command[at + 1 : at + 2] = ["yes", "--appendfsync", "always"]
        return command

    def commands_processed(self) -> int:
        return int(self.client().info("stats")["total_commands_processed"])


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
