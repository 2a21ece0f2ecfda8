"""Races beside booking: cancels of one reservation, cancels during a rush, staff changing the quantity."""

from functools import partial

import pytest

from reservations.models import Reservation, ReservationStatus
from reservations.services import reservation_create
from tests.concurrency.harness import (
    api_call,
    api_cancel,
    api_reserve,
    assert_no_server_errors,
    check_invariants,
    confirmed_count,
    issued_count,
    run_together,
    with_retries,
)
from tests.factories import access_token, make_ticket
from tickets.models import Ticket

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_cancels_of_one_reservation_succeed_exactly_once(racers, alice):
    ticket = make_ticket(quantity=5)
    token = access_token(alice)
    for _ in range(3):
        reservation = reservation_create(user=alice, ticket_id=ticket.pk)

        attempts = run_together([partial(with_retries, partial(api_cancel, token, reservation.pk))] * 8, threads=racers)

        assert_no_server_errors(attempts)
        outcomes = sorted((attempt.final.status, attempt.final.code) for attempt in attempts)
        assert outcomes == [(200, None)] + [(409, "already_cancelled")] * 7
        assert issued_count(ticket.pk) == 0 == confirmed_count(ticket.pk)
    check_invariants()


def test_seats_freed_by_cancels_during_a_rush_are_sold_at_most_once(racers, make_users):
    seats, leaving = 10, 5
    ticket = make_ticket(quantity=seats)
    holders = make_users(seats, "holder")
    held = [reservation_create(user=user, ticket_id=ticket.pk) for user, _ in holders]
    newcomers = make_users(30, "late")
    cancels = [
        partial(with_retries, partial(api_cancel, token, r.pk)) for (_, token), r in zip(holders, held[:leaving])
    ]
    reserves = [partial(with_retries, partial(api_reserve, token, ticket.pk)) for _, token in newcomers]

    attempts = run_together(cancels + reserves, threads=racers)

    assert_no_server_errors(attempts)
    assert [attempt.final.status for attempt in attempts[:leaving]] == [200] * leaving
    booked = [(user, a.final) for (user, _), a in zip(newcomers, attempts[leaving:]) if a.final.status == 201]
    assert len(booked) <= leaving, f"{len(booked)} seats sold where {leaving} came back"
    for attempt in attempts[leaving:]:
        assert attempt.final.status == 201 or attempt.final.code in {"sold_out", "busy"}, attempt.final
    stayed = {user.pk for user, _ in holders[leaving:]}
    confirmed = Reservation.objects.filter(ticket=ticket, status=ReservationStatus.CONFIRMED)
    assert set(confirmed.values_list("user_id", flat=True)) == stayed | {user.pk for user, _ in booked}
    assert issued_count(ticket.pk) == seats - leaving + len(booked) == confirmed.count()
    check_invariants()


def test_staff_changing_quantity_during_a_rush_never_leaves_more_seats_issued_than_exist(racers, staff, make_users):
    ticket = make_ticket(quantity=30)
    for user, _ in make_users(10, "early"):
        reservation_create(user=user, ticket_id=ticket.pk)
    rush = make_users(30, "rush")
    staff_token = access_token(staff)
    quantities = [25, 14, 18, 12, 20, 16]
    patches = [
        partial(
            with_retries,
            partial(api_call, "patch", f"/api/v1/tickets/{ticket.pk}/", token=staff_token, data={"quantity": quantity}),
        )
        for quantity in quantities
    ]
    reserves = [partial(with_retries, partial(api_reserve, token, ticket.pk)) for _, token in rush]
    # Interleave the staff edits with the rush so that they start among the bookings.
    jobs = reserves[:12] + patches[:3] + reserves[12:24] + patches[3:] + reserves[24:]

    attempts = run_together(jobs, threads=racers)

    assert_no_server_errors(attempts)
    patch_answers = [attempts[jobs.index(job)].final for job in patches]
    reserve_answers = [attempts[jobs.index(job)].final for job in reserves]
    for quantity, answer in zip(quantities, patch_answers, strict=True):
        if answer.status == 200:
            assert answer.body["quantity"] == quantity
            assert answer.body["issued_count"] <= quantity
        elif answer.status == 400:
            assert "quantity" in answer.body, answer
        else:
            assert answer.code == "busy", answer
    for answer in reserve_answers:
        assert answer.status == 201 or answer.code in {"sold_out", "busy"}, answer
    ticket = Ticket.objects.get(pk=ticket.pk)
    assert ticket.issued_count <= ticket.quantity
    created = sum(answer.status == 201 for answer in reserve_answers)
    assert ticket.issued_count == 10 + created == confirmed_count(ticket.pk)
    check_invariants()
