"""The database itself refuses a ticket that breaks a rule, whatever the code above it does."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from tests.factories import make_ticket
from tickets.models import ADMISSION_SECONDS_RANGE, ADMIT_PER_MINUTE_RANGE, Ticket

pytestmark = pytest.mark.django_db


def _violated_constraint(**update) -> str:
    ticket = make_ticket(quantity=3)
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        Ticket.objects.filter(pk=ticket.pk).update(**update)
    ticket.refresh_from_db()
    assert (ticket.quantity, ticket.issued_count) == (3, 0)
    return caught.value.__cause__.diag.constraint_name


def test_database_refuses_issued_count_above_quantity():
    assert _violated_constraint(issued_count=4) == "tickets_issued_count_within_quantity"


def test_database_refuses_quantity_zero():
    assert _violated_constraint(quantity=0) == "tickets_quantity_range"


def test_database_refuses_quantity_above_one_million():
    assert _violated_constraint(quantity=1_000_001) == "tickets_quantity_range"


@pytest.mark.parametrize("offset", [timedelta(0), timedelta(minutes=1)])
def test_database_refuses_sale_start_at_or_after_the_event(offset):
    assert _violated_constraint(sale_starts_at=F("event_time") + offset) == "tickets_sale_starts_before_event"


# The waiting room's bounds: the first value past each end is refused, each end itself is stored.
WAITING_ROOM_BOUNDS = [
    ("admit_per_minute", ADMIT_PER_MINUTE_RANGE, "tickets_admit_per_minute_range"),
    ("admission_seconds", ADMISSION_SECONDS_RANGE, "tickets_admission_seconds_range"),
]
PAST_THE_ENDS = [
    pytest.param(field, value, constraint, id=f"{field}={value}")
    for field, (low, high), constraint in WAITING_ROOM_BOUNDS
    for value in (low - 1, high + 1)
]


@pytest.mark.parametrize(("field", "value", "constraint"), PAST_THE_ENDS)
def test_database_refuses_a_waiting_room_value_out_of_range_on_update(field, value, constraint):
    ticket = make_ticket()

    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        Ticket.objects.filter(pk=ticket.pk).update(**{field: value})

    assert caught.value.__cause__.diag.constraint_name == constraint
    ticket.refresh_from_db()
    assert (ticket.admit_per_minute, ticket.admission_seconds) == (600, 300)


@pytest.mark.parametrize(("field", "value", "constraint"), PAST_THE_ENDS)
def test_database_refuses_a_ticket_inserted_with_a_waiting_room_value_out_of_range(field, value, constraint):
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        Ticket.objects.create(title="Gala", quantity=3, event_time=timezone.now() + timedelta(days=1), **{field: value})

    assert caught.value.__cause__.diag.constraint_name == constraint
    assert not Ticket.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [pytest.param(field, value, id=f"{field}={value}") for field, bounds, _ in WAITING_ROOM_BOUNDS for value in bounds],
)
def test_database_stores_a_waiting_room_value_at_either_end_of_its_range(field, value):
    ticket = make_ticket()

    Ticket.objects.filter(pk=ticket.pk).update(**{field: value})

    ticket.refresh_from_db()
    assert getattr(ticket, field) == value
