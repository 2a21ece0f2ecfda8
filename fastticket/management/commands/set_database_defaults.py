"""`manage.py set_database_defaults`: the session timeouts as the app role's defaults in its database."""

from django.core.management.base import BaseCommand
from django.db import connection

from fastticket.pooling import database_defaults_set


class Command(BaseCommand):
    help = (
        "Set lock_timeout and statement_timeout (BOOKING_DB_LOCK_TIMEOUT_MS, DATABASE_STATEMENT_TIMEOUT_MS) "
        "as the defaults of the connected role in its database, so that sessions opened by a transaction "
        "pooler (DATABASE_POOLER=transaction) start with them. Run once per release, after migrate."
    )

    def handle(self, *args: object, **options: object) -> None:
        applied = database_defaults_set(connection)
        values = ", ".join(f"{name}={value} ms" for name, value in applied.items())
        self.stdout.write(f"Role defaults in database {connection.settings_dict['NAME']}: {values}.")
