"""The Idempotency-Key header of reserve: validation, replays, scope and expiry."""

import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone
from rest_framework.test import APIClient

from reservations.models import IdempotencyRecord, Reservation
from tests.factories import access_token, make_ticket
from tests.reservations.helpers import cancel, issued, reserve, seats
from tickets.models import Ticket

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "key",
    ["", "k" * 65, "tab\tkey", "bell\x07key", "del\x7fkey", "newline\n", "k" * 64 + "\n", "clé", "ключ"],
    ids=[
        "empty",
        "65-chars",
        "tab",
        "control",
        "del",
        "trailing-newline",
        "64-chars-and-newline",
        "latin-1",
        "cyrillic",
    ],
)
def test_invalid_idempotency_key_answers_400_and_stores_nothing(alice_api, key):
    ticket = make_ticket()

    response = reserve(alice_api, ticket.id, key=key)

    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()
    assert seats(ticket) == (0, [])
    assert IdempotencyRecord.objects.count() == 0


@pytest.mark.parametrize("key", ["k", "k" * 64, " spaced key ~!@#$%^&*()"], ids=["1-char", "64-chars", "printable"])
def test_valid_idempotency_key_books_a_seat(alice_api, key):
    ticket = make_ticket()

    response = reserve(alice_api, ticket.id, key=key)

    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert IdempotencyRecord.objects.filter(key=key).count() == 1


def test_repeat_of_a_201_replays_the_same_bytes_and_books_nothing_more(alice_api):
    ticket = make_ticket(title="Zoë — Live", quantity=5)
    first = reserve(alice_api, ticket.id, key="order-1")
    before = seats(ticket)

    again = reserve(alice_api, ticket.id, key="order-1")

    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert again["Content-Type"].startswith("application/json")
    assert seats(ticket) == before


def test_repeat_of_a_201_replays_it_even_after_the_reservation_was_cancelled(alice_api):
    ticket = make_ticket(quantity=5)
    first = reserve(alice_api, ticket.id, key="order-1")
    assert cancel(alice_api, first.json()["id"]).status_code == 200
    before = seats(ticket)

    again = reserve(alice_api, ticket.id, key="order-1")

    assert again.status_code == 201
    assert again.content == first.content
    assert again.json()["status"] == "confirmed"
    assert again["Idempotent-Replayed"] == "true"
    assert seats(ticket) == before
    assert issued(ticket) == 0


def test_repeat_of_a_409_replays_it_even_when_the_state_changed(alice_api, bob_api):
    ticket = make_ticket(quantity=1)
    reserve(bob_api, ticket.id)
    first = reserve(alice_api, ticket.id, key="try-1")
    assert first.json()["code"] == "sold_out"
    Ticket.objects.filter(pk=ticket.pk).update(quantity=2)
    before = seats(ticket)

    again = reserve(alice_api, ticket.id, key="try-1")

    assert again.status_code == 409
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert seats(ticket) == before


def test_first_answer_is_not_marked_as_a_replay(alice_api):
    ticket = make_ticket()

    response = reserve(alice_api, ticket.id, key="order-1")

    assert "Idempotent-Replayed" not in response


def test_same_key_for_another_ticket_answers_422_and_stores_nothing(alice_api):
    ticket = make_ticket()
    other = make_ticket(title="Other")
    reserve(alice_api, ticket.id, key="order-1")

    response = reserve(alice_api, other.id, key="order-1")

    assert response.status_code == 422
    assert set(response.json()) == {"detail"}
    assert seats(other) == (0, [])
    assert IdempotencyRecord.objects.get(key="order-1").ticket_id == ticket.id


def test_keys_are_per_user(alice_api, bob_api, bob):
    ticket = make_ticket(quantity=5)
    alices = reserve(alice_api, ticket.id, key="shared-key")

    bobs = reserve(bob_api, ticket.id, key="shared-key")

    assert bobs.status_code == 201
    assert "Idempotent-Replayed" not in bobs
    assert bobs.json()["id"] != alices.json()["id"]
    assert Reservation.objects.get(pk=bobs.json()["id"]).user == bob
    assert issued(ticket) == 2


def test_repeat_without_a_key_after_a_201_answers_already_reserved(alice_api):
    ticket = make_ticket()
    first = reserve(alice_api, ticket.id, key="order-1").json()

    again = reserve(alice_api, ticket.id)

    assert again.status_code == 409
    assert again.json()["code"] == "already_reserved"
    assert again.json()["reservation"] == first["id"]
    assert "Idempotent-Replayed" not in again


def test_new_key_after_a_201_answers_already_reserved(alice_api):
    ticket = make_ticket()
    reserve(alice_api, ticket.id, key="order-1")

    again = reserve(alice_api, ticket.id, key="order-2")

    assert (again.status_code, again.json()["code"]) == (409, "already_reserved")
    assert "Idempotent-Replayed" not in again


def test_record_younger_than_24_hours_is_replayed(alice_api):
    ticket = make_ticket()
    first = reserve(alice_api, ticket.id, key="order-1")
    cancel(alice_api, first.json()["id"])
    IdempotencyRecord.objects.filter(key="order-1").update(created_at=timezone.now() - timedelta(hours=23))

    again = reserve(alice_api, ticket.id, key="order-1")

    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"


def test_record_older_than_24_hours_is_not_replayed(alice_api):
    ticket = make_ticket()
    first = reserve(alice_api, ticket.id, key="order-1")
    cancel(alice_api, first.json()["id"])
    IdempotencyRecord.objects.filter(key="order-1").update(created_at=timezone.now() - timedelta(hours=25))

    again = reserve(alice_api, ticket.id, key="order-1")

    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again
    assert again.json()["id"] != first.json()["id"]
    assert issued(ticket) == 1
    record = IdempotencyRecord.objects.get(key="order-1")
    assert bytes(record.body) == again.content
    assert record.created_at > timezone.now() - timedelta(minutes=5)


def test_expired_key_may_be_used_for_another_ticket(alice_api):
    ticket = make_ticket()
    other = make_ticket(title="Other")
    reserve(alice_api, ticket.id, key="order-1")
    IdempotencyRecord.objects.filter(key="order-1").update(created_at=timezone.now() - timedelta(hours=25))

    response = reserve(alice_api, other.id, key="order-1")

    assert response.status_code == 201
    assert IdempotencyRecord.objects.get(key="order-1").ticket_id == other.id


# Real threads ------------------------------------------------------------------------------------


def _race(user, ticket_id, keys: list[str | None]) -> list:
    """Send one reserve per key from its own thread, all released at the same moment."""
    token = access_token(user)
    barrier = threading.Barrier(len(keys))
    answers: list = [None] * len(keys)

    def send(i: int) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        try:
            barrier.wait(timeout=30)
            answers[i] = reserve(client, ticket_id, key=keys[i])
        except Exception as exc:
            answers[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(keys))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return answers


@pytest.mark.django_db(transaction=True)
def test_two_copies_with_one_key_at_the_same_moment_book_one_seat(alice):
    ticket = make_ticket(quantity=5)

    answers = _race(alice, ticket.id, ["same-key", "same-key"])

    assert not any(isinstance(a, Exception) for a in answers), answers
    assert Reservation.objects.filter(ticket=ticket).count() == 1
    assert issued(ticket) == 1
    answers.sort(key=lambda a: (a.status_code, a.has_header("Idempotent-Replayed")))
    first, second = answers
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first
    if second.status_code == 201:
        assert second.content == first.content
        assert second["Idempotent-Replayed"] == "true"
    else:
        assert second.status_code == 503
        assert second.json()["code"] == "busy"
        assert int(second["Retry-After"]) >= 1


@pytest.mark.django_db(transaction=True)
def test_two_copies_without_a_key_at_the_same_moment_book_one_seat(alice):
    ticket = make_ticket(quantity=5)

    answers = _race(alice, ticket.id, [None, None])

    assert not any(isinstance(a, Exception) for a in answers), answers
    assert Reservation.objects.filter(ticket=ticket).count() == 1
    assert issued(ticket) == 1
    codes = sorted(a.status_code for a in answers)
    assert codes in ([201, 409], [201, 503])
    refused = next(a for a in answers if a.status_code != 201)
    created = next(a for a in answers if a.status_code == 201)
    if refused.status_code == 409:
        assert refused.json() == {
            "code": "already_reserved",
            "detail": refused.json()["detail"],
            "reservation": created.json()["id"],
        }
    else:
        assert refused.json()["code"] == "busy"


def test_purge_deletes_only_answers_older_than_24_hours(alice_api):
    from datetime import timedelta

    from django.core.management import call_command
    from django.utils import timezone

    from reservations.models import IdempotencyRecord
    from tests.factories import make_ticket

    old, fresh = make_ticket(), make_ticket()
    alice_api.post(f"/api/v1/tickets/{old.id}/reserve/", HTTP_IDEMPOTENCY_KEY="old-key")
    alice_api.post(f"/api/v1/tickets/{fresh.id}/reserve/", HTTP_IDEMPOTENCY_KEY="fresh-key")
    IdempotencyRecord.objects.filter(key="old-key").update(created_at=timezone.now() - timedelta(hours=25))

    call_command("purge_idempotency_keys")

    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["fresh-key"]


def test_purge_deletes_booking_withdrawals_older_than_a_day():
    import uuid
    from datetime import timedelta

    from django.core.management import call_command
    from django.utils import timezone

    from reservations.models import BookingWithdrawal

    ticket_id = uuid.uuid4()
    old = BookingWithdrawal.objects.create(
        id=uuid.uuid4(), ticket_id=ticket_id, created_at=timezone.now() - timedelta(hours=25)
    )
    fresh = BookingWithdrawal.objects.create(id=uuid.uuid4(), ticket_id=ticket_id, created_at=timezone.now())

    call_command("purge_idempotency_keys")

    assert list(BookingWithdrawal.objects.values_list("id", flat=True)) == [fresh.id]
    assert not BookingWithdrawal.objects.filter(pk=old.pk).exists()
