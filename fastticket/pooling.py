"""Session settings that hold behind a transaction pooler (PgBouncer in transaction mode).

A booking's row-lock wait is bounded by PostgreSQL's `lock_timeout` and every statement by
`statement_timeout` (settings.DATABASE_SESSION_SETTINGS). Connected directly, Django sends them
as libpq `options` when it connects. Through a transaction pooler it cannot: PgBouncer refuses the
startup parameter, and a `SET` would change only the server session that ran it, which the next
transaction may not get. So they are the app role's defaults in its database (`ALTER ROLE ... IN
DATABASE ... SET`), which every new server session starts with and `DISCARD ALL` keeps: no round
trip on any transaction. `manage.py set_database_defaults` writes them; each process checks them
once, on its first connection, and logs an error when the database disagrees with the settings.
"""

import logging

from django.conf import settings
from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg import sql

logger = logging.getLogger(__name__)

_checked = False


def database_defaults_set(connection: BaseDatabaseWrapper) -> dict[str, int]:
    """Make the settings' session values the defaults of the connected role in its database."""
    wanted = settings.DATABASE_SESSION_SETTINGS
    with connection.cursor() as cursor:
        database = cursor.connection.info.dbname
        for name, milliseconds in wanted.items():
            # The value is an int from settings and the names are ours, never input.
            statement = sql.SQL("ALTER ROLE CURRENT_USER IN DATABASE {} SET {} = {}").format(
                sql.Identifier(database), sql.Identifier(name), sql.Literal(int(milliseconds))
            )
            cursor.execute(statement)
    return dict(wanted)


def session_settings_mismatches(connection: BaseDatabaseWrapper) -> dict[str, tuple[int, int]]:
    """Return {name: (wanted, found)} for each session setting the connection's session lacks."""
    wanted = settings.DATABASE_SESSION_SETTINGS
    with connection.cursor() as cursor:
        # pg_settings gives both timeouts as whole milliseconds, as the settings hold them.
        cursor.execute("SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", [list(wanted)])
        found = {name: int(value) for name, value in cursor.fetchall()}
    return {name: (value, found.get(name)) for name, value in wanted.items() if found.get(name) != value}


def session_settings_check(sender: object, connection: BaseDatabaseWrapper, **kwargs: object) -> None:
    """Log an error, once per process, when a pooled session misses the settings' timeouts."""
    global _checked
    if _checked or settings.DATABASE_POOLER != "transaction" or connection.alias != "default":
        return
    _checked = True
    mismatches = session_settings_mismatches(connection)
    if mismatches:
        found = ", ".join(f"{name}={got} (want {want})" for name, (want, got) in mismatches.items())
        logger.error(
            "DATABASE_POOLER=transaction, but the database's sessions start with %s, so row-lock waits "
            "and statements are not bounded as configured. Run `python manage.py set_database_defaults`, "
            "then have the pooler open new server connections (PgBouncer: RECONNECT).",
            found,
        )
