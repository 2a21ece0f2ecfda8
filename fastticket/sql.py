"""Raw SQL as safe as the ORM it replaces (STYLE.md, rule 11): names from the models, locked reads
only inside a transaction.

The measured hot paths (reservations.batch, reservations.idempotency, accounts.authentication)
write their statements by hand. They take every table and column name from the models' `_meta`
through these helpers, and every locked read calls `require_transaction()` first, as Django's own
`select_for_update()` does. Each module names the columns its INSERTs write, and
tests/reservations/test_raw_sql.py fails when a model gains a column one of them does not.
"""

from django.db import connection
from django.db.models import Model
from django.db.transaction import TransactionManagementError


def table(model: type[Model]) -> str:
    """The model's table, quoted."""
    return connection.ops.quote_name(model._meta.db_table)


def columns(model: type[Model], *names: str) -> str:
    """The columns of the model's fields with these names (foreign keys: their `_id` column), quoted."""
    return ", ".join(connection.ops.quote_name(model._meta.get_field(name).column) for name in names)


def require_transaction() -> None:
    """Refuse a locked read outside a transaction, as Django's select_for_update() does."""
    if connection.get_autocommit():
        raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
