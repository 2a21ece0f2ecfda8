"""The waiting room's four endpoints, from API.md: every answer, every error and their order."""

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from reservations.models import Reservation
from reservations.services import reservation_create
from tests.reservations.helpers import parse_time, reserve
from tests.reservations.waiting_room import (
    admitted_soon,
    ask,
    assert_place,
    force_ticket,
    join,
    leave,
    place_of,
    queue_url,
    room_ticket,
    settles,
    stats,
    stats_url,
    ticket_url,
)
from tickets.models import Ticket

pytestmark = pytest.mark.django_db(transaction=True)


def _booked_before_the_waiting_room(staff_api, user, *, quantity: int) -> tuple[Ticket, Reservation]:
    """A ticket sold to `user` without a waiting room, which staff then put behind one."""
    ticket = room_ticket(quantity=quantity, waiting_room=False)
    reservation = reservation_create(user=user, ticket_id=ticket.pk)
    response = staff_api.patch(ticket_url(ticket.pk), {"waiting_room": True}, format="json")
    assert response.status_code == 200, response.content
    return ticket, reservation


# Joining ---------------------------------------------------------------------------------------


def test_join_answers_201_with_a_new_place_admitted_at_once_when_its_turn_has_come(alice_api):
    ticket = room_ticket(admission_seconds=120)
    before = timezone.now()

    response = join(alice_api, ticket.pk)

    after = timezone.now()
    assert response.status_code == 201, response.content
    place = response.json()
    assert_place(place, ticket_id=ticket.pk, status="admitted")
    assert before - timedelta(milliseconds=1) <= parse_time(place["joined_at"]) <= after
    until = parse_time(place["admitted_until"])
    assert before + timedelta(seconds=119) <= until <= after + timedelta(seconds=120)


def test_join_behind_the_only_seat_answers_a_waiting_place_with_its_position(alice_api, bob_api):
    ticket = room_ticket(quantity=1, admit_per_minute=60)
    assert join(alice_api, ticket.pk).status_code == 201

    response = join(bob_api, ticket.pk)

    assert response.status_code == 201, response.content
    place = response.json()
    assert_place(place, ticket_id=ticket.pk, status="waiting")
    assert place["position"] == 1


def test_join_twice_answers_200_with_the_same_place(alice_api, bob_api, carol_api):
    ticket = room_ticket(quantity=1)
    join(alice_api, ticket.pk)
    first = join(bob_api, ticket.pk).json()
    join(carol_api, ticket.pk)

    again = join(bob_api, ticket.pk)

    assert again.status_code == 200, again.content
    assert again.json() == first
    assert place_of(carol_api, ticket.pk)["position"] == 2


def test_join_on_a_ticket_without_a_waiting_room_answers_409_no_waiting_room(alice_api):
    ticket = room_ticket(waiting_room=False)

    response = join(alice_api, ticket.pk)

    assert response.status_code == 409
    assert response.json()["code"] == "no_waiting_room"
    assert set(response.json()) == {"code", "detail"}
    assert ask(alice_api, ticket.pk).status_code == 404


def test_join_before_the_queue_opens_answers_409_sale_not_open_with_both_times(alice_api, settings):
    settings.QUEUE_OPENS_MINUTES = 30
    starts = (timezone.now() + timedelta(minutes=31)).replace(microsecond=0)
    ticket = room_ticket(sale_starts_at=starts)

    response = join(alice_api, ticket.pk)

    assert response.status_code == 409, response.content
    body = response.json()
    assert set(body) == {"code", "detail", "sale_starts_at", "queue_opens_at"}
    assert body["code"] == "sale_not_open"
    assert parse_time(body["sale_starts_at"]) == starts
    assert parse_time(body["queue_opens_at"]) == starts - timedelta(minutes=30)
    assert ask(alice_api, ticket.pk).status_code == 404


def test_queue_opens_queue_opens_minutes_before_the_sale(alice_api, settings):
    settings.QUEUE_OPENS_MINUTES = 5
    ticket = room_ticket(sale_starts_at=timezone.now() + timedelta(minutes=4, seconds=50))

    response = join(alice_api, ticket.pk)

    assert response.status_code == 201, response.content
    assert_place(response.json(), ticket_id=ticket.pk, status="waiting", sale_open=False)


def test_sale_not_open_of_a_join_names_the_configured_opening(alice_api, settings):
    settings.QUEUE_OPENS_MINUTES = 5
    starts = (timezone.now() + timedelta(minutes=5, seconds=30)).replace(microsecond=0)
    ticket = room_ticket(sale_starts_at=starts)

    body = join(alice_api, ticket.pk).json()

    assert body["code"] == "sale_not_open"
    assert parse_time(body["queue_opens_at"]) == starts - timedelta(minutes=5)


def test_join_after_the_event_started_answers_409_sale_closed(alice_api):
    ticket = room_ticket()
    force_ticket(ticket.pk, event_time=timezone.now() - timedelta(seconds=1))

    response = join(alice_api, ticket.pk)

    assert response.status_code == 409
    assert response.json()["code"] == "sale_closed"
    assert ask(alice_api, ticket.pk).status_code == 404


def test_join_by_a_seat_holder_answers_409_already_reserved_with_the_reservation(staff_api, alice, alice_api):
    ticket, reservation = _booked_before_the_waiting_room(staff_api, alice, quantity=5)

    response = join(alice_api, ticket.pk)

    assert response.status_code == 409
    assert response.json() == {
        "code": "already_reserved",
        "detail": response.json()["detail"],
        "reservation": str(reservation.pk),
    }
    assert ask(alice_api, ticket.pk).status_code == 404


def test_join_of_a_sold_out_ticket_answers_409_sold_out(staff_api, alice, bob_api):
    ticket, _ = _booked_before_the_waiting_room(staff_api, alice, quantity=1)

    response = join(bob_api, ticket.pk)

    assert response.status_code == 409
    assert response.json()["code"] == "sold_out"
    assert ask(bob_api, ticket.pk).status_code == 404


def test_join_of_an_unknown_ticket_answers_404(alice_api):
    for ticket_id in (uuid.uuid4(), "not-a-uuid"):
        response = alice_api.post(f"/api/v1/tickets/{ticket_id}/queue/")
        assert response.status_code == 404
        assert set(response.json()) == {"detail"}


# The order of a join's refusals: no_waiting_room, sale_not_open, sale_closed, already_reserved, sold_out.


def test_no_waiting_room_wins_over_every_other_refusal_of_a_join(alice, alice_api):
    ticket = room_ticket(quantity=1, waiting_room=False)
    reservation_create(user=alice, ticket_id=ticket.pk)
    force_ticket(ticket.pk, event_time=timezone.now() - timedelta(seconds=1))

    assert join(alice_api, ticket.pk).json()["code"] == "no_waiting_room"


def test_sale_not_open_wins_over_already_reserved_and_sold_out_on_a_join(staff_api, alice, alice_api, bob_api):
    ticket, _ = _booked_before_the_waiting_room(staff_api, alice, quantity=1)
    paused = staff_api.patch(
        ticket_url(ticket.pk), {"sale_starts_at": (timezone.now() + timedelta(hours=2)).isoformat()}, format="json"
    )
    assert paused.status_code == 200, paused.content

    assert join(alice_api, ticket.pk).json()["code"] == "sale_not_open"
    assert join(bob_api, ticket.pk).json()["code"] == "sale_not_open"


def test_sale_closed_wins_over_already_reserved_and_sold_out_on_a_join(staff_api, alice, alice_api, bob_api):
    ticket, _ = _booked_before_the_waiting_room(staff_api, alice, quantity=1)
    force_ticket(ticket.pk, event_time=timezone.now() - timedelta(seconds=1))

    assert join(alice_api, ticket.pk).json()["code"] == "sale_closed"
    assert join(bob_api, ticket.pk).json()["code"] == "sale_closed"


def test_already_reserved_wins_over_sold_out_on_a_join(staff_api, alice, alice_api):
    ticket, reservation = _booked_before_the_waiting_room(staff_api, alice, quantity=1)

    body = join(alice_api, ticket.pk).json()

    assert (body["code"], body["reservation"]) == ("already_reserved", str(reservation.pk))


# A caller who holds a place that has not ended gets it back, whatever would refuse a new join.


def test_join_by_a_waiting_place_after_the_sale_was_paused_gives_the_place_back(staff_api, alice_api, bob_api):
    ticket = room_ticket(quantity=1)
    join(alice_api, ticket.pk)
    joined = join(bob_api, ticket.pk).json()
    staff_api.patch(
        ticket_url(ticket.pk), {"sale_starts_at": (timezone.now() + timedelta(hours=2)).isoformat()}, format="json"
    )

    response = join(bob_api, ticket.pk)

    assert response.status_code == 200, response.content
    assert_place(response.json(), ticket_id=ticket.pk, status="waiting", sale_open=False)
    assert response.json()["joined_at"] == joined["joined_at"]


def test_join_by_an_admitted_place_after_the_sale_was_paused_gives_the_place_back(staff_api, alice_api):
    ticket = room_ticket()
    admitted = join(alice_api, ticket.pk).json()
    staff_api.patch(
        ticket_url(ticket.pk), {"sale_starts_at": (timezone.now() + timedelta(hours=2)).isoformat()}, format="json"
    )

    response = join(alice_api, ticket.pk)

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "admitted"
    assert response.json()["admitted_until"] == admitted["admitted_until"]


def test_join_by_a_place_of_a_sold_out_ticket_gives_back_the_sold_out_place(alice, alice_api, bob_api):
    ticket = room_ticket(quantity=1)
    assert join(alice_api, ticket.pk).json()["status"] == "admitted"
    assert join(bob_api, ticket.pk).json()["status"] == "waiting"
    assert reserve(alice_api, ticket.pk).status_code == 201

    response = join(bob_api, ticket.pk)

    assert response.status_code == 200, response.content
    assert_place(response.json(), ticket_id=ticket.pk, status="sold_out")


def test_join_by_a_place_after_the_event_started_gives_back_the_closed_place(alice_api):
    ticket = room_ticket(quantity=1)
    join(alice_api, ticket.pk)
    force_ticket(ticket.pk, event_time=timezone.now() - timedelta(seconds=1))

    response = join(alice_api, ticket.pk)

    assert response.status_code == 200, response.content
    assert_place(response.json(), ticket_id=ticket.pk, status="closed")
    assert_place(place_of(alice_api, ticket.pk), ticket_id=ticket.pk, status="closed")


# Bodies ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type"),
    [('{"position": 1}', "application/json"), ('{"position":', "application/json"), ("[]", "application/json")],
    ids=["a-field", "malformed", "not-an-object"],
)
def test_join_with_a_body_answers_400_and_joins_no_one(alice_api, staff_api, body, content_type):
    ticket = room_ticket()

    response = alice_api.post(queue_url(ticket.pk), body, content_type=content_type)

    assert response.status_code == 400, response.content
    assert isinstance(response.json(), dict)
    assert ask(alice_api, ticket.pk).status_code == 404
    assert stats(staff_api, ticket.pk) == {"waiting": 0, "admitted": 0, "booked": 0, "expired": 0}


def test_reserve_with_a_body_on_a_waiting_room_ticket_answers_400(alice_api):
    ticket = room_ticket()
    join(alice_api, ticket.pk)

    response = alice_api.post(f"/api/v1/tickets/{ticket.pk}/reserve/", {"seat": 1}, format="json")

    assert response.status_code == 400, response.content
    assert place_of(alice_api, ticket.pk)["status"] == "admitted"
    assert not Reservation.objects.exists()


# Asking and leaving ----------------------------------------------------------------------------


def test_ask_answers_200_with_the_callers_place(alice_api):
    ticket = room_ticket()
    joined = join(alice_api, ticket.pk).json()

    place = place_of(alice_api, ticket.pk)

    assert_place(place, ticket_id=ticket.pk, status="admitted")
    assert (place["joined_at"], place["admitted_until"]) == (joined["joined_at"], joined["admitted_until"])


@pytest.mark.parametrize("waiting_room", [True, False], ids=["no-place", "no-waiting-room"])
def test_ask_without_a_place_answers_404(alice_api, bob_api, waiting_room):
    ticket = room_ticket(waiting_room=waiting_room)
    if waiting_room:
        join(bob_api, ticket.pk)

    response = ask(alice_api, ticket.pk)

    assert response.status_code == 404
    assert set(response.json()) == {"detail"}


@pytest.mark.parametrize("method", ["get", "delete"])
def test_ask_and_leave_on_an_unknown_ticket_answer_404(alice_api, method):
    for ticket_id in (uuid.uuid4(), "not-a-uuid"):
        response = getattr(alice_api, method)(f"/api/v1/tickets/{ticket_id}/queue/")
        assert response.status_code == 404
        assert set(response.json()) == {"detail"}


def test_leave_answers_204_and_the_place_is_gone(alice_api, bob_api):
    ticket = room_ticket(quantity=1)
    join(alice_api, ticket.pk)
    join(bob_api, ticket.pk)

    response = leave(bob_api, ticket.pk)

    assert response.status_code == 204
    assert response.content == b""
    assert ask(bob_api, ticket.pk).status_code == 404
    assert leave(bob_api, ticket.pk).status_code == 404


@pytest.mark.parametrize("waiting_room", [True, False], ids=["no-place", "no-waiting-room"])
def test_leave_without_a_place_answers_404(alice_api, waiting_room):
    ticket = room_ticket(waiting_room=waiting_room)

    response = leave(alice_api, ticket.pk)

    assert response.status_code == 404
    assert set(response.json()) == {"detail"}


def test_leaving_an_admission_hands_it_to_the_next_place(alice_api, bob_api, carol_api):
    ticket = room_ticket(quantity=1, admit_per_minute=6000)
    join(alice_api, ticket.pk)
    join(bob_api, ticket.pk)
    join(carol_api, ticket.pk)

    assert leave(alice_api, ticket.pk).status_code == 204

    admitted_soon(bob_api, ticket.pk)
    assert place_of(carol_api, ticket.pk)["position"] == 1


def test_leaving_a_waiting_place_moves_those_behind_it_up(alice_api, bob_api, carol_api):
    ticket = room_ticket(quantity=1)
    join(alice_api, ticket.pk)
    join(bob_api, ticket.pk)
    join(carol_api, ticket.pk)

    leave(bob_api, ticket.pk)

    assert place_of(carol_api, ticket.pk)["position"] == 1


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", queue_url),
        ("get", queue_url),
        ("delete", queue_url),
        ("get", stats_url),
    ],
)
def test_the_queue_endpoints_answer_401_to_anonymous(api, method, path):
    ticket = room_ticket()

    response = getattr(api, method)(path(ticket.pk))

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize("method", ["put", "patch"])
def test_the_queue_refuses_other_methods_with_405(alice_api, method):
    ticket = room_ticket()

    response = getattr(alice_api, method)(queue_url(ticket.pk))

    assert response.status_code == 405
    assert set(response["Allow"].replace(" ", "").split(",")) >= {"GET", "POST", "DELETE"}


# Stats -----------------------------------------------------------------------------------------


def test_stats_count_the_places_by_state(staff_api, alice_api, bob_api, carol_api, dave_api):
    ticket = room_ticket(quantity=2, admit_per_minute=6000)
    for client in (alice_api, bob_api, carol_api, dave_api):
        join(client, ticket.pk)
    settles(staff_api, ticket.pk, {"waiting": 2, "admitted": 2, "booked": 0, "expired": 0})

    reserve(alice_api, ticket.pk)

    assert stats(staff_api, ticket.pk) == {"waiting": 2, "admitted": 1, "booked": 1, "expired": 0}
    leave(dave_api, ticket.pk)
    assert stats(staff_api, ticket.pk) == {"waiting": 1, "admitted": 1, "booked": 1, "expired": 0}


def test_stats_count_sold_out_places_as_waiting(staff_api, alice_api, bob_api, carol_api):
    ticket = room_ticket(quantity=1, admit_per_minute=6000)
    for client in (alice_api, bob_api, carol_api):
        join(client, ticket.pk)
    reserve(alice_api, ticket.pk)
    assert place_of(bob_api, ticket.pk)["status"] == "sold_out"

    assert stats(staff_api, ticket.pk) == {"waiting": 2, "admitted": 0, "booked": 1, "expired": 0}


def test_stats_answer_403_to_non_staff(alice_api):
    ticket = room_ticket()

    response = alice_api.get(stats_url(ticket.pk))

    assert response.status_code == 403
    assert set(response.json()) == {"detail"}


def test_stats_of_an_unknown_ticket_answer_404(staff_api):
    for ticket_id in (uuid.uuid4(), "not-a-uuid"):
        response = staff_api.get(stats_url(ticket_id))
        assert response.status_code == 404
        assert set(response.json()) == {"detail"}


def test_stats_of_a_ticket_without_a_waiting_room_answer_a_json_refusal(staff_api):
    # API.md is silent; a client error with a JSON body, never a 500 or a page of zeros.
    ticket = room_ticket(waiting_room=False)

    response = staff_api.get(stats_url(ticket.pk))

    assert response.status_code in (404, 409), response.content
    assert "detail" in response.json()


# The Ticket's waiting-room fields --------------------------------------------------------------

BAD_VALUES = [
    ("waiting_room", "yes"),
    ("waiting_room", None),
    ("waiting_room", 2),
    ("admit_per_minute", 0),
    ("admit_per_minute", -1),
    ("admit_per_minute", 100_001),
    ("admit_per_minute", 1.5),
    ("admit_per_minute", None),
    ("admission_seconds", 0),
    ("admission_seconds", 29),
    ("admission_seconds", 3_601),
    ("admission_seconds", 30.5),
    ("admission_seconds", "thirty"),
]


@pytest.mark.django_db  # no commit, no Redis: a refused or plain write
@pytest.mark.parametrize(("field", "value"), BAD_VALUES)
def test_create_with_a_waiting_room_field_out_of_bounds_answers_400_and_stores_nothing(staff_api, field, value):
    body = {"title": "Gala", "quantity": 10, "event_time": (timezone.now() + timedelta(days=9)).isoformat()}

    response = staff_api.post("/api/v1/tickets/", {**body, field: value}, format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not Ticket.objects.exists()


@pytest.mark.django_db  # no commit, no Redis: a refused or plain write
@pytest.mark.parametrize(("field", "value"), BAD_VALUES)
def test_patch_with_a_waiting_room_field_out_of_bounds_answers_400_and_changes_nothing(staff_api, field, value):
    ticket = room_ticket(admit_per_minute=600, admission_seconds=300)

    response = staff_api.patch(ticket_url(ticket.pk), {field: value}, format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()
    stored = Ticket.objects.values("waiting_room", "admit_per_minute", "admission_seconds").get(pk=ticket.pk)
    assert stored == {"waiting_room": True, "admit_per_minute": 600, "admission_seconds": 300}


@pytest.mark.django_db  # no commit, no Redis: a refused or plain write
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("admit_per_minute", 1),
        ("admit_per_minute", 100_000),
        ("admission_seconds", 30),
        ("admission_seconds", 3_600),
        ("waiting_room", False),
    ],
)
def test_patch_with_a_waiting_room_field_at_its_bound_is_accepted(staff_api, field, value):
    ticket = room_ticket(admit_per_minute=600, admission_seconds=300)

    response = staff_api.patch(ticket_url(ticket.pk), {field: value}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()[field] == value
    assert Ticket.objects.values_list(field, flat=True).get(pk=ticket.pk) == value


# What the queue reads from the database --------------------------------------------------------


def _tables_read(queries) -> set[str]:
    """The tables the captured queries name, but the user table that authentication reads."""
    names = {"tickets_ticket", "reservations_reservation", "reservations_idempotencyrecord", "accounts_user"}
    return {name for query in queries for name in names if name in query["sql"]} - {"accounts_user"}


def test_asking_reads_no_table_and_joining_only_the_callers_reservation(alice_api, bob_api):
    ticket = room_ticket(quantity=1)
    join(alice_api, ticket.pk)
    ask(bob_api, ticket.pk)  # the users are authenticated once; the mirror is in Redis

    with CaptureQueriesContext(connection) as joining:
        assert join(bob_api, ticket.pk).status_code == 201
    with CaptureQueriesContext(connection) as asking:
        assert ask(bob_api, ticket.pk).status_code == 200
    with CaptureQueriesContext(connection) as asking_again:
        assert join(bob_api, ticket.pk).status_code == 200

    assert _tables_read(asking.captured_queries) == set(), asking.captured_queries
    assert _tables_read(joining.captured_queries) <= {"reservations_reservation"}, joining.captured_queries
    assert _tables_read(asking_again.captured_queries) <= {"reservations_reservation"}


def test_the_sales_view_shows_the_queues_counts(staff_api, alice_api, bob_api):
    ticket = room_ticket(quantity=1)
    join(alice_api, ticket.pk)
    join(bob_api, ticket.pk)

    response = staff_api.get(f"/api/v1/tickets/{ticket.pk}/sales/")

    assert response.status_code == 200
    assert (
        response.json()["queue"]
        == stats(staff_api, ticket.pk)
        == {
            "waiting": 1,
            "admitted": 1,
            "booked": 0,
            "expired": 0,
        }
    )
