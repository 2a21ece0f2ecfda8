"""The database itself refuses a ticket that breaks a rule, whatever the code above it does."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.db.models import F

from tests.factories import make_ticket
from tickets.models import Ticket

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
