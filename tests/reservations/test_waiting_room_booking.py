"""Booking a ticket with a waiting room, from API.md: the admission, not_admitted and its place,
the order of refusals, the Idempotency-Key replay, and staff changing the waiting room."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from reservations.models import Reservation, ReservationStatus
from reservations.services import reservation_create
from tests.reservations.helpers import cancel, issued, parse_time, reserve, seats
from tests.reservations.waiting_room import (
    admitted_at,
    admitted_soon,
    ask,
    assert_paced,
    assert_place,
    force_ticket,
    join,
    place_of,
    room_ticket,
    stats,
    ticket_url,
    user_clients,
)
from tests.servers import row_lock_held

pytestmark = pytest.mark.django_db(transaction=True)


def _assert_not_admitted(response, *, queue) -> dict:
    assert response.status_code == 409, response.content
    body = response.json()
    assert set(body) == {"code", "detail", "queue"}
    assert body["code"] == "not_admitted"
    if queue is None:
        assert body["queue"] is None
    else:
        assert_place(body["queue"], ticket_id=queue["ticket"], status=queue["status"])
        assert body["queue"]["joined_at"] == queue["joined_at"]
        assert body["queue"]["position"] == queue["position"]
    return body


def _pause(staff_api, ticket) -> None:
    starts = (timezone.now() + timedelta(hours=2)).isoformat()
    assert staff_api.patch(ticket_url(ticket.pk), {"sale_starts_at": starts}, format="json").status_code == 200


# The admission --------------------------------------------------------------------------------


def test_reserve_without_a_place_answers_409_not_admitted_with_a_null_queue(alice_api):
    ticket = room_ticket()

    _assert_not_admitted(reserve(alice_api, ticket.pk), queue=None)

    assert seats(ticket) == (0, [])


def test_reserve_while_waiting_answers_409_not_admitted_with_the_callers_place(alice_api, bob_api):
    ticket = room_ticket(quantity=1)
    join(alice_api, ticket.pk)
    waiting = join(bob_api, ticket.pk).json()

    _assert_not_admitted(reserve(bob_api, ticket.pk), queue=waiting)

    assert seats(ticket) == (0, [])
    assert place_of(bob_api, ticket.pk)["joined_at"] == waiting["joined_at"]


def test_reserve_while_waiting_before_the_opening_answers_sale_not_open(alice_api):
    ticket = room_ticket(sale_starts_at=timezone.now() + timedelta(minutes=10))
    join(alice_api, ticket.pk)

    response = reserve(alice_api, ticket.pk)

    assert response.status_code == 409
    assert response.json()["code"] == "sale_not_open"
    assert seats(ticket) == (0, [])


def test_an_admitted_user_books_and_the_place_becomes_booked(staff_api, alice, alice_api):
    ticket = room_ticket(quantity=5, admission_seconds=120)
    assert join(alice_api, ticket.pk).json()["status"] == "admitted"

    response = reserve(alice_api, ticket.pk)

    assert response.status_code == 201, response.content
    stored = Reservation.objects.get(pk=response.json()["id"])
    assert (stored.user, stored.status) == (alice, ReservationStatus.CONFIRMED)
    assert issued(ticket) == 1
    assert_place(place_of(alice_api, ticket.pk), ticket_id=ticket.pk, status="booked")
    assert stats(staff_api, ticket.pk) == {"waiting": 0, "admitted": 0, "booked": 1, "expired": 0}


def test_a_second_reserve_after_booking_answers_already_reserved(alice_api):
    ticket = room_ticket(quantity=5)
    join(alice_api, ticket.pk)
    booked = reserve(alice_api, ticket.pk).json()

    response = reserve(alice_api, ticket.pk)

    assert response.status_code == 409
    assert (response.json()["code"], response.json()["reservation"]) == ("already_reserved", booked["id"])
    assert issued(ticket) == 1


def test_the_admission_is_used_by_the_201_so_a_cancel_does_not_give_it_back(alice_api):
    ticket = room_ticket(quantity=5)
    join(alice_api, ticket.pk)
    booked = reserve(alice_api, ticket.pk).json()
    assert cancel(alice_api, booked["id"]).status_code == 200

    body = _assert_not_admitted(reserve(alice_api, ticket.pk), queue=place_of(alice_api, ticket.pk))

    assert body["queue"]["status"] == "booked"
    assert issued(ticket) == 0


def test_a_user_who_cancelled_joins_again_and_books_again(alice_api):
    ticket = room_ticket(quantity=5)
    join(alice_api, ticket.pk)
    cancel(alice_api, reserve(alice_api, ticket.pk).json()["id"])

    assert join(alice_api, ticket.pk).status_code == 201
    admitted_soon(alice_api, ticket.pk)

    assert reserve(alice_api, ticket.pk).status_code == 201
    assert issued(ticket) == 1


# The order of refusals: sale_not_open, sale_closed, already_reserved, sold_out, not_admitted ---


def test_sale_not_open_wins_over_not_admitted_and_an_admission(staff_api, alice_api, bob_api):
    ticket = room_ticket(quantity=1)
    join(alice_api, ticket.pk)
    join(bob_api, ticket.pk)
    _pause(staff_api, ticket)

    assert reserve(alice_api, ticket.pk).json()["code"] == "sale_not_open"
    assert reserve(bob_api, ticket.pk).json()["code"] == "sale_not_open"
    assert seats(ticket) == (0, [])


def test_sale_closed_wins_over_not_admitted_and_an_admission(alice_api, bob_api):
    ticket = room_ticket(quantity=1)
    join(alice_api, ticket.pk)
    join(bob_api, ticket.pk)
    force_ticket(ticket.pk, event_time=timezone.now() - timedelta(seconds=1))

    assert reserve(alice_api, ticket.pk).json()["code"] == "sale_closed"
    assert reserve(bob_api, ticket.pk).json()["code"] == "sale_closed"
    assert seats(ticket) == (0, [])


def test_already_reserved_wins_over_sold_out_and_not_admitted(staff_api, alice, alice_api):
    ticket = room_ticket(quantity=1, waiting_room=False)
    held = reservation_create(user=alice, ticket_id=ticket.pk)
    staff_api.patch(ticket_url(ticket.pk), {"waiting_room": True}, format="json")

    response = reserve(alice_api, ticket.pk)

    assert response.status_code == 409
    assert (response.json()["code"], response.json()["reservation"]) == ("already_reserved", str(held.pk))


def test_sold_out_wins_over_not_admitted(alice_api, bob_api, carol_api):
    ticket = room_ticket(quantity=1)
    join(alice_api, ticket.pk)
    join(bob_api, ticket.pk)
    reserve(alice_api, ticket.pk)

    assert reserve(bob_api, ticket.pk).json()["code"] == "sold_out"
    assert reserve(carol_api, ticket.pk).json()["code"] == "sold_out"
    assert issued(ticket) == 1


# Idempotency-Key ------------------------------------------------------------------------------


def test_an_idempotency_key_replay_needs_no_admission(alice_api):
    ticket = room_ticket(quantity=5)
    join(alice_api, ticket.pk)
    first = reserve(alice_api, ticket.pk, key="order-1")
    assert first.status_code == 201
    assert place_of(alice_api, ticket.pk)["status"] == "booked"

    replay = reserve(alice_api, ticket.pk, key="order-1")
    cancel(alice_api, first.json()["id"])
    after_cancel = reserve(alice_api, ticket.pk, key="order-1")

    for answer in (replay, after_cancel):
        assert answer.status_code == 201
        assert answer.content == first.content
        assert answer["Idempotent-Replayed"] == "true"
    assert Reservation.objects.filter(ticket=ticket).count() == 1


def test_a_not_admitted_answer_is_kept_for_its_key_like_any_refusal(alice_api, bob_api):
    ticket = room_ticket(quantity=1, admit_per_minute=6000)
    join(alice_api, ticket.pk)
    join(bob_api, ticket.pk)
    first = reserve(bob_api, ticket.pk, key="k-1")
    _assert_not_admitted(first, queue=place_of(bob_api, ticket.pk))
    cancel(alice_api, reserve(alice_api, ticket.pk).json()["id"])
    admitted_soon(bob_api, ticket.pk)

    replay = reserve(bob_api, ticket.pk, key="k-1")

    assert (replay.status_code, replay.content) == (409, first.content)
    assert replay["Idempotent-Replayed"] == "true"
    assert place_of(bob_api, ticket.pk)["status"] == "admitted", "a replay used the admission"
    assert reserve(bob_api, ticket.pk, key="k-2").status_code == 201


# Staff changing the waiting room --------------------------------------------------------------


def test_turning_the_waiting_room_off_ends_the_queue_and_everyone_books_directly(
    staff_api, alice_api, bob_api, carol_api
):
    ticket = room_ticket(quantity=3)
    join(alice_api, ticket.pk)
    join(bob_api, ticket.pk)
    assert place_of(alice_api, ticket.pk)["status"] == "admitted"

    response = staff_api.patch(ticket_url(ticket.pk), {"waiting_room": False}, format="json")

    assert response.status_code == 200
    for client in (alice_api, bob_api, carol_api):
        assert ask(client, ticket.pk).status_code == 404
        assert join(client, ticket.pk).json()["code"] == "no_waiting_room"
    for client in (alice_api, bob_api, carol_api):
        assert reserve(client, ticket.pk).status_code == 201
    assert issued(ticket) == 3


def test_turning_the_waiting_room_on_again_starts_an_empty_queue(staff_api, alice_api, bob_api):
    ticket = room_ticket(quantity=1)
    join(alice_api, ticket.pk)
    join(bob_api, ticket.pk)
    staff_api.patch(ticket_url(ticket.pk), {"waiting_room": False}, format="json")

    staff_api.patch(ticket_url(ticket.pk), {"waiting_room": True}, format="json")

    assert stats(staff_api, ticket.pk) == {"waiting": 0, "admitted": 0, "booked": 0, "expired": 0}
    assert ask(alice_api, ticket.pk).status_code == 404
    _assert_not_admitted(reserve(alice_api, ticket.pk), queue=None)
    assert join(bob_api, ticket.pk).status_code == 201
    admitted_soon(bob_api, ticket.pk)


def test_a_higher_admission_rate_applies_at_once(staff_api):
    ticket = room_ticket(quantity=10, admit_per_minute=1)
    fans = user_clients(3, "fan")
    for fan in fans:
        join(fan, ticket.pk)
    assert [place_of(fan, ticket.pk)["status"] for fan in fans] == ["admitted", "waiting", "waiting"]

    changed = timezone.now()
    assert staff_api.patch(ticket_url(ticket.pk), {"admit_per_minute": 600}, format="json").status_code == 200

    # At 600 a minute, the pace allows the next admission 0.1 s after the change: within 2 s of it.
    for fan in fans[1:]:
        place = admitted_soon(fan, ticket.pk)
        assert admitted_at(place, 30) <= changed + timedelta(seconds=2.5)


def test_a_lower_admission_rate_applies_from_then_on_and_keeps_the_turns_that_came_before(staff_api):
    rate, seconds = 60, 60
    ticket = room_ticket(quantity=50, admit_per_minute=rate, admission_seconds=seconds)
    fans = user_clients(8, "fan")
    for fan in fans:
        join(fan, ticket.pk)
    first = admitted_at(place_of(fans[0], ticket.pk), seconds)
    # Nobody asks until 2.5 s after the first turn: at one a second, the second and third places'
    # turns come meanwhile (and more of them if this machine is slow to send the change).
    time.sleep(max(0.0, (first + timedelta(seconds=2.5) - timezone.now()).total_seconds()))

    sending = timezone.now()
    assert staff_api.patch(ticket_url(ticket.pk), {"admit_per_minute": 1}, format="json").status_code == 200
    changed = timezone.now()
    time.sleep(2)

    places = [place_of(fan, ticket.pk) for fan in fans]
    times = [admitted_at(place, seconds) for place in places if place["status"] == "admitted"]
    turns_before = int((sending - first).total_seconds()) + 1
    assert turns_before >= 3
    before = [at for at in times if at <= sending]
    expected = [first + timedelta(seconds=n) for n in range(turns_before)]
    assert before == expected, "the turns before the change were lost"
    # A turn that fell while the change was on its way may have come at either rate.
    after = [at for at in times if at > changed]
    assert len(after) <= 1 + (timezone.now() - changed).total_seconds() / 60
    assert_paced([at for at in times if at <= changed], admit_per_minute=rate)


def test_a_changed_admission_time_applies_to_the_next_admissions(staff_api, alice_api, bob_api):
    ticket = room_ticket(quantity=1, admission_seconds=30)
    join(alice_api, ticket.pk)
    join(bob_api, ticket.pk)
    assert staff_api.patch(ticket_url(ticket.pk), {"admission_seconds": 600}, format="json").status_code == 200

    assert ask(alice_api, ticket.pk).json()["status"] == "admitted"
    alice = reserve(alice_api, ticket.pk).json()
    cancel(alice_api, alice["id"])
    bob = admitted_soon(bob_api, ticket.pk)

    assert parse_time(bob["admitted_until"]) > timezone.now() + timedelta(seconds=500)


def test_a_busy_reserve_keeps_the_admission(settings, alice_api):
    """A request that gets any non-2xx answer changed nothing: the admission is still there."""
    settings.BOOKING_LOCK_WAIT = 1
    settings.BOOKING_LOCK_TIMEOUT_MS = 500
    ticket = room_ticket(quantity=5, admission_seconds=120)
    admitted = join(alice_api, ticket.pk).json()

    with row_lock_held(ticket.pk):
        busy = reserve(alice_api, ticket.pk)

    assert busy.status_code == 503, busy.content
    assert busy.json()["code"] == "busy"
    assert seats(ticket) == (0, [])
    place = place_of(alice_api, ticket.pk)
    assert (place["status"], place["admitted_until"]) == ("admitted", admitted["admitted_until"])
    assert reserve(alice_api, ticket.pk).status_code == 201
