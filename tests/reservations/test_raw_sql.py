"""The hand-written statements of the hot paths stay in step with the models (fastticket.sql).

A column added to one of these models without a change to the INSERT that writes its rows would
be left to its database default or refused by PostgreSQL at sale time; these tests fail first.
"""

import pytest
from django.db import connection, transaction
from django.db.transaction import TransactionManagementError

from fastticket.sql import columns, require_transaction, table
from reservations.batch import RESERVATION_INSERT_COLUMNS, WITHDRAWAL_INSERT_COLUMNS
from reservations.idempotency import IDEMPOTENCY_INSERT_COLUMNS
from reservations.models import BookingWithdrawal, IdempotencyRecord, Reservation


def _fields(model, *, without=()):
    return {field.name for field in model._meta.concrete_fields} - set(without)


@pytest.mark.parametrize(
    ("model", "written", "left_to_the_database"),
    [
        (Reservation, RESERVATION_INSERT_COLUMNS, ()),
        (BookingWithdrawal, WITHDRAWAL_INSERT_COLUMNS, ()),
        # Its id is a serial the database assigns.
        (IdempotencyRecord, IDEMPOTENCY_INSERT_COLUMNS, ("id",)),
    ],
    ids=["reservation", "withdrawal", "idempotency"],
)
def test_each_insert_writes_every_column_of_its_model(model, written, left_to_the_database):
    assert len(set(written)) == len(written)
    assert set(written) == _fields(model, without=left_to_the_database)


def test_names_are_the_models_columns_quoted():
    assert table(Reservation) == connection.ops.quote_name(Reservation._meta.db_table)
    # A foreign key is written through its `_id` column.
    assert columns(Reservation, "user", "status") == '"user_id", "status"'


def test_a_locked_read_is_allowed_inside_a_transaction(db):
    # The test's own transaction counts, as it does for select_for_update().
    require_transaction()


@pytest.mark.django_db(transaction=True)
def test_a_locked_read_is_refused_in_autocommit():
    with pytest.raises(TransactionManagementError):
        require_transaction()
    with transaction.atomic():
        require_transaction()
