"""Staff writes on tickets: create, replace, change and delete, and who may do them."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from reservations.services import reservation_cancel, reservation_create
from tests.factories import make_ticket
from tickets.models import Ticket

pytestmark = pytest.mark.django_db

LIST = "/api/v1/tickets/"


def _url(ticket) -> str:
    return f"{LIST}{ticket.id}/"


def _new_ticket_body(**overrides) -> dict:
    body = {
        "title": "Symphony No. 9",
        "quantity": 50,
        "event_time": (timezone.now() + timedelta(days=20)).isoformat(),
        "sale_starts_at": (timezone.now() + timedelta(days=1)).isoformat(),
    }
    return {**body, **overrides}


def test_staff_creates_a_ticket_with_nothing_issued(staff_api):
    response = staff_api.post(LIST, _new_ticket_body(), format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    ticket = Ticket.objects.get(pk=body["id"])
    assert ticket.title == "Symphony No. 9"
    assert (ticket.quantity, ticket.issued_count) == (50, 0)
    assert (body["issued_count"], body["remaining"], body["sold_out"]) == (0, 50, False)


def test_staff_creates_a_ticket_without_sale_start_that_is_open_at_once(staff_api):
    body = _new_ticket_body()
    del body["sale_starts_at"]

    response = staff_api.post(LIST, body, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["sale_starts_at"] is None
    assert Ticket.objects.get(pk=response.json()["id"]).sale_starts_at is None


def test_anonymous_create_answers_401_with_code(api):
    response = api.post(LIST, _new_ticket_body(), format="json")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert "detail" in response.json()
    assert not Ticket.objects.exists()


def test_non_staff_create_answers_403(alice_api):
    response = alice_api.post(LIST, _new_ticket_body(), format="json")

    assert response.status_code == 403
    assert "detail" in response.json()
    assert not Ticket.objects.exists()


def test_staff_replaces_a_ticket_with_put(staff_api):
    ticket = make_ticket(title="Old", quantity=5)
    event_time = timezone.now() + timedelta(days=40)

    response = staff_api.put(
        _url(ticket), {"title": "New", "quantity": 8, "event_time": event_time.isoformat()}, format="json"
    )

    assert response.status_code == 200, response.content
    ticket.refresh_from_db()
    assert (ticket.title, ticket.quantity, ticket.event_time) == ("New", 8, event_time)
    assert response.json()["remaining"] == 8


def test_staff_changes_one_field_with_patch(staff_api):
    ticket = make_ticket(title="Old", quantity=5)

    response = staff_api.patch(_url(ticket), {"quantity": 12}, format="json")

    assert response.status_code == 200, response.content
    ticket.refresh_from_db()
    assert (ticket.title, ticket.quantity) == ("Old", 12)
    assert response.json()["quantity"] == 12


def test_staff_clears_the_sale_start_with_patch(staff_api):
    ticket = make_ticket(sale_starts_at=timezone.now() + timedelta(days=1))

    response = staff_api.patch(_url(ticket), {"sale_starts_at": None}, format="json")

    assert response.status_code == 200, response.content
    ticket.refresh_from_db()
    assert ticket.sale_starts_at is None


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_anonymous_change_answers_401_and_changes_nothing(api, method):
    ticket = make_ticket(title="Keep")

    response = getattr(api, method)(_url(ticket), {"title": "Gone"}, format="json")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    ticket.refresh_from_db()
    assert ticket.title == "Keep"


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_non_staff_change_answers_403_and_changes_nothing(alice_api, method):
    ticket = make_ticket(title="Keep")

    response = getattr(alice_api, method)(_url(ticket), {"title": "Gone"}, format="json")

    assert response.status_code == 403
    ticket.refresh_from_db()
    assert ticket.title == "Keep"


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_staff_change_of_an_unknown_ticket_answers_404(staff_api, method):
    response = getattr(staff_api, method)(f"{LIST}{uuid.uuid4()}/", {"title": "X"}, format="json")

    assert response.status_code == 404
    assert "detail" in response.json()


def test_staff_deletes_a_ticket_without_reservations(staff_api):
    ticket = make_ticket()

    response = staff_api.delete(_url(ticket))

    assert response.status_code == 204
    assert not Ticket.objects.filter(pk=ticket.pk).exists()
    assert staff_api.get(_url(ticket)).status_code == 404


def test_delete_of_a_ticket_with_an_active_reservation_answers_409(staff_api, alice):
    ticket = make_ticket()
    reservation_create(user=alice, ticket_id=ticket.id)

    response = staff_api.delete(_url(ticket))

    assert response.status_code == 409
    assert response.json()["code"] == "ticket_has_reservations"
    assert "detail" in response.json()
    assert Ticket.objects.filter(pk=ticket.pk).exists()


def test_delete_of_a_ticket_with_only_a_cancelled_reservation_answers_409(staff_api, alice):
    ticket = make_ticket()
    reservation = reservation_create(user=alice, ticket_id=ticket.id)
    reservation_cancel(user=alice, reservation_id=reservation.id)

    response = staff_api.delete(_url(ticket))

    assert response.status_code == 409
    assert response.json()["code"] == "ticket_has_reservations"
    assert Ticket.objects.filter(pk=ticket.pk).exists()


def test_staff_may_pause_a_sale_after_seats_were_sold(staff_api, alice_api, bob):
    ticket = make_ticket(quantity=5)
    reservation_create(user=bob, ticket_id=ticket.id)
    opens = timezone.now() + timedelta(days=2)

    response = staff_api.patch(_url(ticket), {"sale_starts_at": opens.isoformat()}, format="json")

    assert response.status_code == 200, response.content
    reserve = alice_api.post(f"{_url(ticket)}reserve/")
    assert reserve.status_code == 409
    assert reserve.json()["code"] == "sale_not_open"
    assert "sale_starts_at" in reserve.json()
    ticket.refresh_from_db()
    assert ticket.issued_count == 1


def test_staff_may_reopen_a_sold_out_ticket_by_raising_quantity(staff_api, alice_api, bob):
    ticket = make_ticket(quantity=1)
    reservation_create(user=bob, ticket_id=ticket.id)
    assert alice_api.post(f"{_url(ticket)}reserve/").json()["code"] == "sold_out"

    assert staff_api.patch(_url(ticket), {"quantity": 2}, format="json").status_code == 200

    assert alice_api.post(f"{_url(ticket)}reserve/").status_code == 201
