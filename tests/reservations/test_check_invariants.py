"""`manage.py check_invariants`: OK on a sound database, a named violation and a non-zero exit otherwise."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.factories import make_ticket
from tests.reservations.helpers import cancel, reserve
from tickets.models import Ticket

pytestmark = pytest.mark.django_db


def _run() -> str:
    out = StringIO()
    call_command("check_invariants", stdout=out)
    return out.getvalue()


def test_check_invariants_prints_ok_on_a_clean_database(alice_api, bob_api):
    ticket = make_ticket(quantity=2)
    reserve(alice_api, ticket.id)
    booked = reserve(bob_api, ticket.id).json()
    cancel(bob_api, booked["id"])

    output = _run()

    assert output.startswith("OK")
    assert "1 confirmed reservations" in output


def test_check_invariants_fails_naming_a_corrupted_issued_count(alice_api):
    ticket = make_ticket(title="Corrupted", quantity=5)
    reserve(alice_api, ticket.id)
    Ticket.objects.filter(pk=ticket.pk).update(issued_count=3)
    out = StringIO()

    with pytest.raises(CommandError) as raised:
        call_command("check_invariants", stdout=out)

    assert raised.value.returncode != 0
    assert "1 invariant violation" in str(raised.value)
    assert f"ticket {ticket.pk} (Corrupted): issued_count 3 != 1 confirmed" in out.getvalue()
    assert "OK" not in out.getvalue()
