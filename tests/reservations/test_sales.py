"""GET /api/v1/tickets/{id}/sales/: a ticket's sale as it goes, for staff dashboards."""

import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from django_redis import get_redis_connection

from reservations import selectors
from reservations.models import Reservation
from reservations.refusals import (
    FLUSH_SECONDS,
    REFUSAL_TTL_SECONDS,
    refusal_key,
    refusal_note,
    refusals_flush,
    refusals_per_second,
)
from reservations.services import reservation_cancel, reservation_create
from scripts.harness.env import random_secret_key, server_env
from tests.factories import make_ticket, make_user
from tests.reservations.helpers import parse_time, redis_unreachable, reserve
from tests.servers import wait_until

pytestmark = pytest.mark.django_db

SALES_KEYS = {
    "ticket",
    "quantity",
    "issued_count",
    "remaining",
    "first_booking_at",
    "sold_out_at",
    "per_second",
    "queue",
}
NO_REFUSALS = {"sold_out": 0, "busy": 0, "not_admitted": 0}
# Nothing listens on port 1: a connection to it is refused at once.


def _url(ticket_id) -> str:
    return f"/api/v1/tickets/{ticket_id}/sales/"


_start = {"second": 0}


@pytest.fixture(autouse=True)
def _test_start():
    """Count `_second(n)` from the second the test started in, so one test's seconds agree."""
    _start["second"] = int(timezone.now().timestamp())


def _second(seconds_ago: int) -> datetime:
    """The start of the second `seconds_ago` seconds before the test started (UTC)."""
    return datetime.fromtimestamp(_start["second"] - seconds_ago, UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _book_at(ticket, user, moment: datetime, *, cancelled_at: datetime | None = None) -> Reservation:
    """Book through the service, then place the booking (and its cancel) at the given times."""
    reservation = reservation_create(user=user, ticket_id=ticket.id)
    Reservation.objects.filter(pk=reservation.pk).update(reserved_at=moment)
    if cancelled_at is not None:
        reservation_cancel(user=user, reservation_id=reservation.pk)
        Reservation.objects.filter(pk=reservation.pk).update(cancelled_at=cancelled_at)
    return reservation


def _count(pipeline, *, ticket_id, code: str, second: int, times: int = 1) -> None:
    """Write refusals as the line's scripts and the flusher do (reservations.refusals' layout)."""
    key = refusal_key(ticket_id, second)
    pipeline.hincrby(key, code, times)
    pipeline.expire(key, REFUSAL_TTL_SECONDS)


def _refuse(ticket, code: str, second: datetime, times: int = 1) -> None:
    pipeline = get_redis_connection("default").pipeline(transaction=False)
    _count(pipeline, ticket_id=ticket.id, code=code, second=int(second.timestamp()), times=times)
    pipeline.execute()


def test_sales_of_a_ticket_with_no_activity(staff_api):
    ticket = make_ticket(quantity=7)

    response = staff_api.get(_url(ticket.id))

    assert response.status_code == 200
    assert response.json() == {
        "ticket": str(ticket.id),
        "quantity": 7,
        "issued_count": 0,
        "remaining": 7,
        "first_booking_at": None,
        "sold_out_at": None,
        "per_second": [],
        "queue": None,
    }


def test_sales_count_bookings_and_cancellations_per_second_oldest_first(staff_api):
    ticket = make_ticket(quantity=10)
    users = [make_user() for _ in range(5)]
    early, busy, late = _second(200), _second(100), _second(3)
    _book_at(ticket, users[0], early + timedelta(milliseconds=10))
    _book_at(ticket, users[1], busy + timedelta(milliseconds=20), cancelled_at=late + timedelta(milliseconds=5))
    _book_at(ticket, users[2], busy + timedelta(milliseconds=990))
    _book_at(ticket, users[3], late + timedelta(milliseconds=500))

    body = staff_api.get(_url(ticket.id)).json()

    assert set(body) == SALES_KEYS
    assert (body["quantity"], body["issued_count"], body["remaining"]) == (10, 3, 7)
    assert body["per_second"] == [
        {"at": _iso(early), "booked": 1, "cancelled": 0, "refused": NO_REFUSALS},
        # The cancelled booking still counts as booked in the second it was made.
        {"at": _iso(busy), "booked": 2, "cancelled": 0, "refused": NO_REFUSALS},
        {"at": _iso(late), "booked": 1, "cancelled": 1, "refused": NO_REFUSALS},
    ]


def test_sales_show_only_the_last_300_seconds(staff_api, alice, bob):
    ticket = make_ticket()
    _book_at(ticket, alice, _second(400))
    _book_at(ticket, bob, _second(280))

    body = staff_api.get(_url(ticket.id)).json()

    assert [entry["at"] for entry in body["per_second"]] == [_iso(_second(280))]
    # The first booking is the ticket's first ever, outside the window too.
    assert parse_time(body["first_booking_at"]) == _second(400)


def test_sales_leave_out_other_tickets(staff_api, alice):
    ticket, other = make_ticket(), make_ticket(title="Other")
    _book_at(other, alice, _second(5))
    _refuse(other, "sold_out", _second(5))

    body = staff_api.get(_url(ticket.id)).json()

    assert (body["issued_count"], body["first_booking_at"], body["per_second"]) == (0, None, [])


def test_sold_out_at_is_the_last_booking_while_the_ticket_is_sold_out(staff_api, alice, bob):
    ticket = make_ticket(quantity=2)
    first, last = _book_at(ticket, alice, _second(50)), _book_at(ticket, bob, _second(20))

    sold_out = staff_api.get(_url(ticket.id)).json()
    reservation_cancel(user=alice, reservation_id=first.pk)
    reopened = staff_api.get(_url(ticket.id)).json()

    assert parse_time(sold_out["sold_out_at"]) == _second(20)
    assert parse_time(sold_out["first_booking_at"]) == _second(50)
    assert sold_out["remaining"] == 0
    assert reopened["sold_out_at"] is None
    assert (reopened["issued_count"], reopened["remaining"]) == (1, 1)
    assert last.pk != first.pk


def test_sold_out_at_skips_a_later_cancelled_booking(staff_api, alice, bob):
    ticket = make_ticket(quantity=2)
    carol = make_user("carol")
    _book_at(ticket, alice, _second(50))
    _book_at(ticket, carol, _second(30), cancelled_at=_second(25))
    _book_at(ticket, bob, _second(40))

    body = staff_api.get(_url(ticket.id)).json()

    assert body["remaining"] == 0
    assert parse_time(body["sold_out_at"]) == _second(40)


def test_refusals_are_counted_per_second_and_code(staff_api, alice):
    ticket = make_ticket(quantity=5)
    _book_at(ticket, alice, _second(30))
    _refuse(ticket, "sold_out", _second(30), times=3)
    _refuse(ticket, "busy", _second(30))
    _refuse(ticket, "not_admitted", _second(2), times=2)

    body = staff_api.get(_url(ticket.id)).json()

    assert body["per_second"] == [
        {"at": _iso(_second(30)), "booked": 1, "cancelled": 0, "refused": {**NO_REFUSALS, "sold_out": 3, "busy": 1}},
        # A second with refusals only is a second that saw something.
        {"at": _iso(_second(2)), "booked": 0, "cancelled": 0, "refused": {**NO_REFUSALS, "not_admitted": 2}},
    ]


# A process that notes one refusal of each code and exits at once, before its flusher's first flush.
NOTE_AND_EXIT = """
import sys, django
django.setup()
from reservations.refusals import refusal_note
for code in ("sold_out", "sold_out", "busy"):
    refusal_note(ticket_id=sys.argv[1], code=code)
"""


def test_a_process_that_exits_before_its_flush_writes_what_it_noted_at_exit():
    ticket_id = str(uuid.uuid4())
    started = int(time.time())
    env = server_env(
        redis_url=settings.REDIS_URL, redis_prefix=settings.REDIS_KEY_PREFIX, secret_key=random_secret_key()
    )

    done = subprocess.run(
        [sys.executable, "-c", NOTE_AND_EXIT, ticket_id],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr.decode()
    counted = refusals_per_second(ticket_id=ticket_id, since=started, until=int(time.time()))
    assert counted is not None
    assert sum(by["sold_out"] for by in counted.values()) == 2
    assert sum(by["busy"] for by in counted.values()) == 1
    get_redis_connection("default").delete(*(refusal_key(ticket_id, second) for second in counted))


def test_a_sold_out_refusal_through_the_api_is_counted_within_the_flush_interval(staff_api, alice_api, bob_api):
    ticket = make_ticket(quantity=1)
    assert reserve(alice_api, ticket.id).status_code == 201

    # The database decides this one in reserve's first statement: noted in this process, then
    # written by its flusher thread (reservations.refusals), not by the line's scripts.
    refused = reserve(bob_api, ticket.id)
    refused_at = time.monotonic()

    assert (refused.status_code, refused.json()["code"]) == (409, "sold_out")

    def refusals() -> list[dict]:
        per_second = staff_api.get(_url(ticket.id)).json()["per_second"]
        return [entry["refused"] for entry in per_second if entry["refused"] != NO_REFUSALS]

    # A flush every FLUSH_SECONDS, and slack for the write and the poll on a loaded machine.
    counted = wait_until(refusals, timeout=FLUSH_SECONDS + 0.5, what="the sold-out refusal in the sales")
    assert time.monotonic() - refused_at <= FLUSH_SECONDS + 0.5
    assert counted == [{**NO_REFUSALS, "sold_out": 1}]
    time.sleep(2 * FLUSH_SECONDS)
    assert refusals() == [{**NO_REFUSALS, "sold_out": 1}], "a later flush counted it again"


def test_refused_is_null_while_redis_is_unreachable(staff_api, alice):
    ticket = make_ticket()
    _book_at(ticket, alice, _second(8))
    _refuse(ticket, "sold_out", _second(4))

    with redis_unreachable():
        response = staff_api.get(_url(ticket.id))

    assert response.status_code == 200
    assert response.json()["per_second"] == [{"at": _iso(_second(8)), "booked": 1, "cancelled": 0, "refused": None}]


def test_sales_show_the_waiting_rooms_counts(staff_api, monkeypatch):
    ticket = make_ticket()
    counts = {"waiting": 40, "admitted": 3, "booked": 7, "expired": 1}
    monkeypatch.setattr(selectors, "queue_stats", lambda *, ticket: counts if ticket.pk == ticket_id else None)
    ticket_id = ticket.pk

    assert staff_api.get(_url(ticket.id)).json()["queue"] == counts


def test_sales_answer_401_to_anonymous(api):
    response = api.get(_url(make_ticket().id))

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_sales_answer_403_to_non_staff(alice_api):
    response = alice_api.get(_url(make_ticket().id))

    assert response.status_code == 403
    assert set(response.json()) == {"detail"}


@pytest.mark.parametrize("ticket_id", [uuid.uuid4(), "not-a-uuid"])
def test_sales_of_an_unknown_ticket_answer_404(staff_api, ticket_id):
    response = staff_api.get(_url(ticket_id))

    assert response.status_code == 404
    assert set(response.json()) == {"detail"}


def test_sales_refuse_writes_with_405(staff_api):
    response = staff_api.post(_url(make_ticket().id))

    assert response.status_code == 405
    assert "GET" in response["Allow"]


def test_staff_session_reads_sales_as_the_admin_page_does(client, staff):
    ticket = make_ticket()
    client.force_login(staff)

    response = client.get(_url(ticket.id), HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    assert response.json()["ticket"] == str(ticket.id)


# The Redis layout, which the booking path and its Lua scripts write --------------------------


def test_a_refusal_is_one_hash_field_under_the_tickets_second_expiring_after_360_seconds():
    ticket_id = uuid.uuid4()
    redis = get_redis_connection("default")
    before = int(time.time())

    refusal_note(ticket_id=ticket_id, code="busy")
    refusal_note(ticket_id=ticket_id, code="busy")
    refusals_flush()

    keys = [refusal_key(ticket_id, second) for second in range(before, int(time.time()) + 1)]
    assert all(key == f"{settings.REDIS_KEY_PREFIX}:refusals:{ticket_id}:{key.rsplit(':', 1)[1]}" for key in keys)
    written = {key: redis.hgetall(key) for key in keys if redis.exists(key)}
    assert sum(int(fields[b"busy"]) for fields in written.values()) == 2
    assert all(set(fields) == {b"busy"} for fields in written.values())
    assert all(REFUSAL_TTL_SECONDS - 5 <= redis.ttl(key) <= REFUSAL_TTL_SECONDS == 360 for key in written)


def test_refusal_note_refuses_a_code_it_does_not_count():
    with pytest.raises(ValueError, match="already_reserved"):
        refusal_note(ticket_id=uuid.uuid4(), code="already_reserved")


def test_refusals_per_second_reads_both_ends_of_its_range():
    ticket_id = uuid.uuid4()
    pipeline = get_redis_connection("default").pipeline(transaction=False)
    for second in (99, 100, 105, 106):
        _count(pipeline, ticket_id=ticket_id, code="sold_out", second=second)
    pipeline.execute()

    assert sorted(refusals_per_second(ticket_id=ticket_id, since=100, until=105)) == [100, 105]
