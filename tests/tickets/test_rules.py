"""Every ticket rule is a 400 on its field, and a refused write stores nothing."""

from datetime import timedelta

import pytest
from django.utils import timezone

from reservations.services import reservation_create
from tests.factories import make_ticket, make_user
from tickets.models import Ticket

pytestmark = pytest.mark.django_db

LIST = "/api/v1/tickets/"


def _url(ticket) -> str:
    return f"{LIST}{ticket.id}/"


def _in(**delta) -> str:
    return (timezone.now() + timedelta(**delta)).isoformat()


def _new_ticket_body(**overrides) -> dict:
    return {"title": "Gala", "quantity": 10, "event_time": _in(days=10), **overrides}


def _snapshot(ticket) -> tuple:
    ticket.refresh_from_db()
    return (ticket.title, ticket.quantity, ticket.issued_count, ticket.event_time, ticket.sale_starts_at)


def _assert_400_on(response, field: str) -> None:
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert isinstance(response.json()[field], list)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", ""),
        ("title", "   "),
        ("title", "x" * 201),
        ("title", "\f" + "x" * 200),
        ("title", "x" * 200 + " "),
        ("title", None),
        ("quantity", 0),
        ("quantity", -1),
        ("quantity", 1_000_001),
        ("quantity", "ten"),
        ("quantity", 1.5),
        ("quantity", None),
        ("event_time", "tomorrow"),
        ("event_time", None),
        ("sale_starts_at", "soon"),
        ("waiting_room", "yes"),
        ("waiting_room", 1),
        ("waiting_room", None),
        ("admit_per_minute", 0),
        ("admit_per_minute", 100_001),
        ("admit_per_minute", "600"),
        ("admission_seconds", 29),
        ("admission_seconds", 3_601),
        ("admission_seconds", None),
    ],
)
def test_create_with_a_bad_value_answers_400_on_the_field_and_stores_nothing(staff_api, field, value):
    response = staff_api.post(LIST, _new_ticket_body(**{field: value}), format="json")

    _assert_400_on(response, field)
    assert not Ticket.objects.exists()


@pytest.mark.parametrize("field", ["title", "quantity", "event_time"])
def test_create_without_a_required_field_answers_400_on_it(staff_api, field):
    body = _new_ticket_body()
    del body[field]

    _assert_400_on(staff_api.post(LIST, body, format="json"), field)
    assert not Ticket.objects.exists()


@pytest.mark.parametrize(("title", "quantity"), [("x", 1), ("x" * 200, 1_000_000)])
def test_create_at_the_limits_is_accepted(staff_api, title, quantity):
    response = staff_api.post(LIST, _new_ticket_body(title=title, quantity=quantity), format="json")

    assert response.status_code == 201, response.content
    assert Ticket.objects.get().quantity == quantity


@pytest.mark.parametrize(
    ("waiting_room", "admit_per_minute", "admission_seconds"),
    [(True, 1, 30), (True, 100_000, 3_600), (False, 600, 300)],
)
def test_create_with_waiting_room_settings_at_their_limits_is_accepted(
    staff_api, waiting_room, admit_per_minute, admission_seconds
):
    body = _new_ticket_body(
        waiting_room=waiting_room, admit_per_minute=admit_per_minute, admission_seconds=admission_seconds
    )
    response = staff_api.post(LIST, body, format="json")

    assert response.status_code == 201, response.content
    stored = Ticket.objects.values("waiting_room", "admit_per_minute", "admission_seconds").get()
    assert stored == {
        "waiting_room": waiting_room,
        "admit_per_minute": admit_per_minute,
        "admission_seconds": admission_seconds,
    }


def test_create_without_waiting_room_settings_takes_the_defaults(staff_api):
    response = staff_api.post(LIST, _new_ticket_body(), format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["waiting_room"], body["admit_per_minute"], body["admission_seconds"]) == (False, 600, 300)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", ""),
        ("title", "x" * 201),
        ("title", "\f" + "x" * 200),
        ("quantity", 0),
        ("quantity", -1),
        ("quantity", 1_000_001),
        ("quantity", "ten"),
        ("quantity", 1.5),
        ("waiting_room", "true"),
        ("admit_per_minute", 0),
        ("admission_seconds", 3_601),
    ],
)
def test_patch_with_a_bad_value_answers_400_on_the_field_and_changes_nothing(staff_api, field, value):
    ticket = make_ticket()
    before = _snapshot(ticket)

    _assert_400_on(staff_api.patch(_url(ticket), {field: value}, format="json"), field)
    assert _snapshot(ticket) == before


def test_create_with_a_past_event_time_answers_400(staff_api):
    response = staff_api.post(LIST, _new_ticket_body(event_time=_in(minutes=-1)), format="json")

    _assert_400_on(response, "event_time")
    assert not Ticket.objects.exists()


def test_patch_moving_the_event_into_the_past_answers_400(staff_api):
    ticket = make_ticket()
    before = _snapshot(ticket)

    _assert_400_on(staff_api.patch(_url(ticket), {"event_time": _in(hours=-2)}, format="json"), "event_time")
    assert _snapshot(ticket) == before


def test_patch_of_another_field_of_a_past_event_is_accepted(staff_api):
    ticket = make_ticket(event_time=timezone.now() - timedelta(days=1))

    response = staff_api.patch(_url(ticket), {"title": "Archived gala"}, format="json")

    assert response.status_code == 200, response.content
    ticket.refresh_from_db()
    assert ticket.title == "Archived gala"


def test_put_resending_an_unchanged_past_event_time_is_accepted(staff_api):
    ticket = make_ticket(title="Old", event_time=timezone.now() - timedelta(days=1))
    body = staff_api.get(_url(ticket)).json()

    response = staff_api.put(
        _url(ticket),
        {"title": "Renamed", "quantity": body["quantity"], "event_time": body["event_time"]},
        format="json",
    )

    assert response.status_code == 200, response.content
    ticket.refresh_from_db()
    assert ticket.title == "Renamed"


@pytest.mark.parametrize("sale_offset", [timedelta(0), timedelta(hours=1)])
def test_create_with_sale_start_not_before_the_event_answers_400(staff_api, sale_offset):
    event_time = timezone.now() + timedelta(days=5)
    body = _new_ticket_body(event_time=event_time.isoformat(), sale_starts_at=(event_time + sale_offset).isoformat())

    _assert_400_on(staff_api.post(LIST, body, format="json"), "sale_starts_at")
    assert not Ticket.objects.exists()


def test_patch_of_sale_start_alone_is_checked_against_the_stored_event_time(staff_api):
    ticket = make_ticket(event_time=timezone.now() + timedelta(days=5))
    before = _snapshot(ticket)

    response = staff_api.patch(_url(ticket), {"sale_starts_at": _in(days=6)}, format="json")

    _assert_400_on(response, "sale_starts_at")
    assert _snapshot(ticket) == before


def test_patch_of_event_time_alone_is_checked_against_the_stored_sale_start(staff_api):
    ticket = make_ticket(
        event_time=timezone.now() + timedelta(days=5), sale_starts_at=timezone.now() + timedelta(days=3)
    )
    before = _snapshot(ticket)

    response = staff_api.patch(_url(ticket), {"event_time": _in(days=2)}, format="json")

    assert response.status_code == 400, response.content
    assert {"sale_starts_at", "event_time"} & set(response.json())
    assert _snapshot(ticket) == before


def test_patch_moving_both_times_together_is_accepted(staff_api):
    ticket = make_ticket(
        event_time=timezone.now() + timedelta(days=5), sale_starts_at=timezone.now() + timedelta(days=3)
    )

    response = staff_api.patch(_url(ticket), {"event_time": _in(days=2), "sale_starts_at": _in(days=1)}, format="json")

    assert response.status_code == 200, response.content


def test_quantity_below_issued_count_answers_400_and_changes_nothing(staff_api):
    ticket = make_ticket(quantity=5)
    for name in ("ann", "ben", "cat"):
        reservation_create(user=make_user(name), ticket_id=ticket.id)
    before = _snapshot(ticket)

    _assert_400_on(staff_api.patch(_url(ticket), {"quantity": 2}, format="json"), "quantity")
    assert _snapshot(ticket) == before


def test_quantity_equal_to_issued_count_is_accepted_and_sells_out(staff_api, alice):
    ticket = make_ticket(quantity=5)
    reservation_create(user=alice, ticket_id=ticket.id)

    response = staff_api.patch(_url(ticket), {"quantity": 1}, format="json")

    assert response.status_code == 200, response.content
    assert (response.json()["remaining"], response.json()["sold_out"]) == (0, True)


def test_unknown_field_on_create_answers_400_and_stores_nothing(staff_api):
    response = staff_api.post(LIST, _new_ticket_body(colour="red"), format="json")

    _assert_400_on(response, "colour")
    assert not Ticket.objects.exists()


def test_unknown_field_on_patch_answers_400_and_changes_nothing(staff_api):
    ticket = make_ticket(title="Keep")
    before = _snapshot(ticket)

    _assert_400_on(staff_api.patch(_url(ticket), {"title": "Gone", "venue": "Hall"}, format="json"), "venue")
    assert _snapshot(ticket) == before


def test_read_only_fields_sent_on_create_are_ignored(staff_api):
    forged_id = "00000000-0000-4000-8000-000000000001"
    body = _new_ticket_body(
        id=forged_id,
        issued_count=7,
        remaining=0,
        sold_out=True,
        created_at="2000-01-01T00:00:00Z",
    )

    response = staff_api.post(LIST, body, format="json")

    assert response.status_code == 201, response.content
    ticket = Ticket.objects.get()
    assert str(ticket.id) != forged_id
    assert ticket.issued_count == 0
    assert ticket.created_at > timezone.now() - timedelta(minutes=5)
    assert (response.json()["remaining"], response.json()["sold_out"]) == (10, False)


def test_read_only_fields_sent_on_patch_are_ignored(staff_api, alice):
    ticket = make_ticket(quantity=4)
    reservation_create(user=alice, ticket_id=ticket.id)
    ticket.refresh_from_db()
    created_at = ticket.created_at
    forged = {
        "id": "00000000-0000-4000-8000-000000000002",
        "issued_count": 0,
        "remaining": 4,
        "sold_out": True,
        "created_at": "2000-01-01T00:00:00Z",
        "title": "Renamed",
    }

    response = staff_api.patch(_url(ticket), forged, format="json")

    assert response.status_code == 200, response.content
    ticket.refresh_from_db()
    assert ticket.title == "Renamed"
    assert (ticket.issued_count, ticket.created_at) == (1, created_at)
    assert response.json()["id"] == str(ticket.id)
    assert not Ticket.objects.filter(pk=forged["id"]).exists()


def test_malformed_json_body_answers_400_and_stores_nothing(staff_api):
    response = staff_api.post(LIST, data='{"title": "Gala",', content_type="application/json")

    assert response.status_code == 400
    assert "detail" in response.json()
    assert not Ticket.objects.exists()
