"""The scratch database and the benchmark's Redis keys: create, migrate, check, drop."""

import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis


def database_url(server_url: str, name: str) -> str:
    """Return the URL of database `name` on the server of server_url."""
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def recreate(server_url: str, name: str) -> None:
    """Drop the scratch database if it exists (ending its sessions) and create it empty."""
    with psycopg.connect(database_url(server_url, "postgres"), autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop(server_url: str, name: str) -> None:
    """Drop the scratch database, ending any session still on it."""
    with psycopg.connect(database_url(server_url, "postgres"), autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def server_version(server_url: str) -> str:
    with psycopg.connect(database_url(server_url, "postgres"), connect_timeout=5) as conn:
        return conn.execute("SHOW server_version").fetchone()[0]


def manage(args: list[str], *, env: dict[str, str], cwd: Path, python: str, timeout: float) -> tuple[int, str]:
    """Run `manage.py <args>` and return its exit code and combined output."""
    done = subprocess.run(
        [python, "manage.py", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return done.returncode, (done.stdout + done.stderr).strip()


@dataclass(frozen=True)
class RedisKeys:
    """The keys this run creates: the cache and flags under the prefix, and python-redis-lock's."""

    url: str
    prefix: str

    def patterns(self) -> list[str]:
        return [f"{self.prefix}:*", f"lock:{self.prefix}:*", f"lock-signal:{self.prefix}:*"]

    def delete(self) -> int:
        """Delete every key of this prefix (SCAN, never FLUSHDB: the server is shared)."""
        client = redis.Redis.from_url(self.url, socket_timeout=5)
        deleted = 0
        try:
            for pattern in self.patterns():
                batch = []
                for key in client.scan_iter(match=pattern, count=1000):
                    batch.append(key)
                    if len(batch) >= 1000:
                        deleted += client.delete(*batch)
                        batch = []
                if batch:
                    deleted += client.delete(*batch)
        finally:
            client.close()
        return deleted

    def version(self) -> str:
        client = redis.Redis.from_url(self.url, socket_timeout=5)
        try:
            return str(client.info("server")["redis_version"])
        finally:
            client.close()
