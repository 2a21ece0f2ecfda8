"""Databases on a PostgreSQL server, named by URL: create, ensure, drop, a scratch database, migrate."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from urllib.parse import unquote, urlsplit, urlunsplit

from scripts.harness.processes import manage, output_of

CONNECT_TIMEOUT = 5
# A server's own database, always there, to create and drop the others from.
MAINTENANCE_DATABASE = "postgres"


class DatabaseError(Exception):
    """A database could not be reached, created or dropped; the message is one line for a person."""


def database_url(url: str, name: str) -> str:
    """Return the URL of database `name` on the server of `url`."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def database_name(url: str) -> str:
    return unquote(urlsplit(url).path.lstrip("/"))


def server_address(url: str) -> str:
    """Return `user@host:port` of a database URL, for messages (never its password)."""
    parts = urlsplit(url)
    return f"{parts.username or 'postgres'}@{parts.hostname or '127.0.0.1'}:{parts.port or 5432}"


def _libpq_url(url: str) -> str:
    """Return `url` with a scheme libpq reads (django-environ also takes pgsql:// and psql://)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql"))


def _reason(error: Exception) -> str:
    """Return the last line of a psycopg error that says what went wrong."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    return text.split("failed: ", 1)[-1]


def connect(url: str, **kwargs):
    import psycopg

    return psycopg.connect(_libpq_url(url), connect_timeout=CONNECT_TIMEOUT, **kwargs)


def _maintenance(url: str):
    import psycopg

    try:
        return connect(database_url(url, MAINTENANCE_DATABASE), autocommit=True)
    except psycopg.OperationalError as error:
        raise DatabaseError(f"cannot connect to PostgreSQL as {server_address(url)}: {_reason(error)}") from error


def exists(url: str) -> bool:
    with _maintenance(url) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database_name(url)]).fetchone() is not None


def create(url: str) -> None:
    """Create the database of `url` (empty, from template1)."""
    import psycopg
    from psycopg import sql

    with _maintenance(url) as conn:
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database_name(url))))
        except psycopg.errors.InsufficientPrivilege as error:
            raise DatabaseError(
                f"{server_address(url)} may not create the database {database_name(url)!r}: {_reason(error)}"
            ) from error


def drop(url: str) -> None:
    """Drop the database of `url` if it exists, ending its sessions. Only for databases this run created."""
    from psycopg import sql

    with _maintenance(url) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database_name(url))))


def recreate(url: str) -> None:
    drop(url)
    create(url)


def ensure(url: str) -> bool:
    """Make sure the database of `url` exists: create it when missing; return True if it was created."""
    import psycopg

    try:
        with connect(url):
            return False
    except psycopg.OperationalError:
        pass  # missing, or the server is unreachable: the maintenance database tells which
    if exists(url):
        try:
            with connect(url):
                return False
        except psycopg.OperationalError as error:
            raise DatabaseError(
                f"cannot connect to the database {database_name(url)!r} as {server_address(url)}: {_reason(error)}"
            ) from error
    create(url)
    return True


def server_version(url: str) -> str:
    with _maintenance(url) as conn:
        return conn.execute("SHOW server_version").fetchone()[0]


@contextmanager
def scratch(url: str, *, keep: bool = False) -> Iterator[str]:
    """Create the database of `url` afresh for the block and drop it afterwards (unless `keep`)."""
    recreate(url)
    try:
        yield url
    finally:
        if not keep:
            drop(url)


def migrate(env: Mapping[str, str], *, timeout: float = 600) -> subprocess.CompletedProcess:
    """Apply the migrations to the database of env's DATABASE_URL; raise DatabaseError on failure."""
    done = manage("migrate", "--noinput", env=dict(env), timeout=timeout)
    if done.returncode != 0:
        raise DatabaseError(f"migrate failed:\n{output_of(done)}")
    return done
