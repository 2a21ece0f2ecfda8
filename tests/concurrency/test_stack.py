"""Races through the production topology: nginx -> three FastTicket processes -> PgBouncer -> PostgreSQL.

Every booking here goes through PgBouncer in transaction mode (DATABASE_POOLER=transaction), so
these are also the booking race and the lock-timeout test behind a transaction pooler.
"""

import http.client
import threading
import time
import uuid
from functools import partial

import psycopg
import pytest
from django.db import connection

from reservations.models import Reservation, ReservationStatus
from tests.concurrency.harness import (
    Answer,
    Attempts,
    assert_sold_exactly,
    check_invariants,
    issued_count,
    reserve_path,
    run_together,
    sale,
)
from tests.factories import access_token, make_ticket
from tests.servers import database_url, row_lock_held, wait_until
from tests.stack import access_log_count, call, running_stack

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

THREADS = 32
# Answers after which a client asks again, as API.md's clients do: the proxy's 502 when a process
# died under the request, and 503s with Retry-After.
RETRIED = {502, 503}


@pytest.fixture
def stack(tmp_path):
    with running_stack(tmp_path / "stack") as stack:
        yield stack


def book_through(stack, user, token, *, ticket_id) -> Answer:
    answer, _, _ = call(stack.url, "POST", reserve_path(ticket_id), token=token)
    return answer


def test_300_users_for_50_seats_across_three_processes_sell_exactly_50(stack, make_users):
    ticket = make_ticket(quantity=50)
    crowd = make_users(300, "stackcrowd")

    attempts = sale(partial(book_through, stack, ticket_id=ticket.pk), crowd, threads=THREADS)

    assert_sold_exactly(ticket, crowd, attempts, seats=50)
    for web in stack.web:
        assert access_log_count(web.log_path, "/reserve/") > 0, f"{web.url} got no booking: no balancing"


def _book_until_answered(stack, token: str, ticket_id, *, deadline: float) -> Attempts:
    """Book with one Idempotency-Key, asking again after a 502/503 or a dropped connection."""
    key = f"stack-{uuid.uuid4()}"
    attempts = Attempts()
    while True:
        try:
            answer, headers, _ = call(
                stack.url, "POST", reserve_path(ticket_id), token=token, headers={"Idempotency-Key": key}, timeout=60
            )
        except (ConnectionError, OSError, http.client.HTTPException) as exc:
            # Dropped, or cut short mid-answer (the process died after nginx passed on its headers).
            answer = Answer(0, repr(exc))
        else:
            if headers.get("Idempotent-Replayed") == "true":
                answer = Answer(answer.status, {**answer.body, "replayed": True}, answer.retry_after)
        attempts.answers.append(answer)
        if answer.status not in RETRIED | {0} or time.monotonic() > deadline:
            return attempts
        time.sleep(0.2)


def test_a_process_killed_mid_sale_books_nobody_twice_and_nginx_routes_around_it_until_it_is_back(stack, make_users):
    seats = 60
    ticket = make_ticket(quantity=seats)
    crowd = make_users(240, "stackkill")
    victim = stack.web[1]
    deadline = time.monotonic() + 120

    def kill_when_selling() -> None:
        try:
            wait_until(lambda: issued_count(ticket.pk) >= 10, timeout=60, what="the sale to start", interval=0.01)
            victim.kill()
        finally:
            connection.close()

    killer = threading.Thread(target=kill_when_selling)
    killer.start()
    attempts = run_together(
        [partial(_book_until_answered, stack, token, ticket.pk, deadline=deadline) for _, token in crowd],
        threads=THREADS,
    )
    killer.join()
    assert not victim.running()

    finals = [attempt.final for attempt in attempts]
    cut_off = [answer for attempt in attempts for answer in attempt.answers[:-1] if answer.status in (0, 502)]
    assert cut_off, "the kill interrupted no booking: the test proved nothing"
    assert {(answer.status, answer.code) for answer in finals if answer.status != 201} <= {(409, "sold_out")}, [
        answer for answer in finals if answer.status not in (201, 409)
    ][:3]
    winners = {str(user.pk) for (user, _), answer in zip(crowd, finals, strict=True) if answer.status == 201}
    confirmed = Reservation.objects.filter(ticket=ticket, status=ReservationStatus.CONFIRMED)
    assert len(winners) == seats == confirmed.count() == issued_count(ticket.pk)
    assert {str(pk) for pk in confirmed.values_list("user_id", flat=True)} == winners
    assert {answer.body["id"] for answer in finals if answer.status == 201} == {
        str(pk) for pk in confirmed.values_list("id", flat=True)
    }
    assert Reservation.objects.filter(ticket=ticket).count() == seats, "a refused or retried request stored something"
    check_invariants()

    # The proxy sends nothing to the dead process: every request is answered by the others.
    for _ in range(30):
        answer, _, _ = call(stack.url, "GET", "/healthz")
        assert answer.status == 200, answer

    victim.start()
    served_before = access_log_count(victim.log_path, '"GET /healthz')

    def victim_serves_again() -> bool:
        call(stack.url, "GET", "/healthz")
        return access_log_count(victim.log_path, '"GET /healthz') > served_before

    wait_until(victim_serves_again, timeout=20, what="nginx to use the restarted process again", interval=0.1)


def test_a_held_row_lock_answers_503_busy_within_the_bound_through_pgbouncer(tmp_path, alice):
    ticket = make_ticket(quantity=5)
    with (
        running_stack(tmp_path / "stack", web_processes=1, workers=1, BOOKING_LOCK_WAIT="2") as stack,
        row_lock_held(ticket.pk),
    ):
        answer, _, seconds = call(stack.url, "POST", reserve_path(ticket.pk), token=access_token(alice))

    assert (answer.status, answer.code) == (503, "busy"), answer
    assert answer.retry_after
    assert 1.8 <= seconds < 3.5, seconds
    assert issued_count(ticket.pk) == 0
    assert not Reservation.objects.filter(ticket_id=ticket.pk).exists()


def _cancel_path(reservation_id) -> str:
    return f"/api/v1/reservations/{reservation_id}/cancel/"


def test_a_cancel_waiting_on_a_held_row_lock_answers_503_busy_within_the_bound_through_pgbouncer(tmp_path, alice):
    """A cancel's row-lock wait is bounded by the session's lock_timeout: the role's default behind a pooler."""
    ticket = make_ticket(quantity=5)
    with running_stack(tmp_path / "stack", web_processes=1, workers=1, BOOKING_LOCK_WAIT="2") as stack:
        booked, _, _ = call(stack.url, "POST", reserve_path(ticket.pk), token=access_token(alice))
        assert booked.status == 201, booked
        with row_lock_held(ticket.pk):
            answer, _, seconds = call(stack.url, "POST", _cancel_path(booked.body["id"]), token=access_token(alice))

    assert (answer.status, answer.code) == (503, "busy"), answer
    assert 1.8 <= seconds < 3.5, seconds
    assert Reservation.objects.get(pk=booked.body["id"]).status == ReservationStatus.CONFIRMED
    assert issued_count(ticket.pk) == 1


def test_without_the_role_defaults_a_pooled_cancel_waits_past_the_bound(tmp_path, alice):
    """The negative control: through PgBouncer only the role's defaults bound a session's row-lock wait.

    (A booking's batch sets its own bound for its transaction, reservations.batch, so it needs no
    session default; cancels and staff edits use the session's.)
    """
    ticket = make_ticket(quantity=5)
    with running_stack(tmp_path / "stack", web_processes=1, workers=1, BOOKING_LOCK_WAIT="2") as stack:
        with psycopg.connect(database_url(), autocommit=True) as admin:
            name = admin.info.dbname
            admin.execute(f'ALTER ROLE CURRENT_USER IN DATABASE "{name}" RESET lock_timeout')
        # New server sessions, which start without the reset setting.
        stack.pgbouncer.stop()
        stack.pgbouncer.start()
        booked, _, _ = call(stack.url, "POST", reserve_path(ticket.pk), token=access_token(alice))
        assert booked.status == 201, booked
        with row_lock_held(ticket.pk) as release:
            timer = threading.Timer(4, release)
            timer.start()
            try:
                answer, _, seconds = call(stack.url, "POST", _cancel_path(booked.body["id"]), token=access_token(alice))
            finally:
                timer.join()

    assert answer.status == 200, answer
    assert seconds >= 3.5, seconds
