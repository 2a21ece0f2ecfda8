"""Booking: the only code that changes `issued_count` or a reservation's status.

Locking order, the same for booking, cancelling and staff edits of a ticket (tickets.services),
so no cycle can form:

1. the per-ticket Redis lock (tickets.locks), taken outside the transaction so that a flash
   crowd waits in Redis (BLPOP), not in database connections. Not granted within
   BOOKING_LOCK_WAIT seconds: 503 `busy`. Redis unreachable: skipped, and the outage logged once
   per interval; the row lock alone still serialises bookings.
2. `transaction.atomic(durable=True)`: durable because an outer transaction would commit after the
   Redis lock is released.
3. `SELECT ... FOR UPDATE` on the ticket row (what `select_for_update()` sends, written out with
   the caller's held reservation in the same query): the real guarantee. The connection's
   `lock_timeout` (set for every connection in settings, so it costs no round trip here) bounds
   the wait; a wait over the limit is a 503 `busy`.
4. the checks in API.md's order, then the INSERT and `issued_count = issued_count + 1` in one
   statement.
5. `on_commit` for the Redis sold-out flag, commit, release the Redis lock. A release that fails
   because the lock expired is logged and never turns a committed booking into an error.

If the Redis lock expires while its holder is still working, a second holder can enter; it then
waits on the row lock, and the check constraint and the partial unique constraint stay as the net.
"""

import uuid
from datetime import datetime
from uuid import UUID

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from fastticket.db import busy_on_lock_timeout
from fastticket.errors import (
    AlreadyCancelled,
    AlreadyReserved,
    Busy,
    DomainError,
    IdempotentReplay,
    SaleClosed,
    SaleNotOpen,
    SoldOut,
    TicketNotFound,
)
from reservations import metrics
from reservations.idempotency import (
    created_answer,
    error_answer,
    idempotency_remember,
    idempotency_remember_refusal,
    idempotency_replay,
)
from reservations.models import Reservation, ReservationStatus
from tickets.availability import sold_out_flag_clear, sold_out_flag_get, sold_out_flag_set
from tickets.locks import ticket_lock
from tickets.models import SaleStatus, Ticket, sale_window

ONE_CONFIRMED_CONSTRAINT = "reservations_one_confirmed_per_user_ticket"
WITHIN_QUANTITY_CONSTRAINT = "tickets_issued_count_within_quantity"


# The statements of the booking hot path: the two a booking holds its locks for, and the one every
# sold-out answer asks. They are written as SQL rather than built by the ORM: building them (the
# locked read with its subquery, the INSERT and the F() update) cost about 1 ms of CPU per
# booking, spent while the ticket's locks are held, which is what caps a hot ticket's sales per
# second (bench/README.md has the measurements).
_TICKETS = Ticket._meta.db_table
_RESERVATIONS = Reservation._meta.db_table
# What `Ticket.objects.select_for_update(of=("self",))` sends, plus the caller's confirmed
# reservation in the same round trip.
_SELECT_TICKET_FOR_UPDATE = f"""
    SELECT t.title, t.quantity, t.issued_count, t.event_time, t.sale_starts_at,
           (SELECT r.id FROM {_RESERVATIONS} r
             WHERE r.ticket_id = t.id AND r.user_id = %s AND r.status = 'confirmed'
             LIMIT 1)
      FROM {_TICKETS} t
     WHERE t.id = %s
       FOR UPDATE OF t
"""  # noqa: S608 (table names are the models', never input)
# The INSERT and `issued_count = issued_count + 1` in one statement: both or neither, and the
# constraints (one confirmed per user and ticket, issued_count <= quantity) check both.
_INSERT_RESERVATION_AND_COUNT = f"""
    WITH booked AS (
        INSERT INTO {_RESERVATIONS} (id, user_id, ticket_id, status, reserved_at, cancelled_at)
        VALUES (%s, %s, %s, 'confirmed', %s, NULL)
        RETURNING ticket_id
    )
    UPDATE {_TICKETS} SET issued_count = issued_count + 1 WHERE id = (SELECT ticket_id FROM booked)
"""  # noqa: S608
_SELECT_HELD_RESERVATION = f"""
    SELECT id FROM {_RESERVATIONS} WHERE user_id = %s AND ticket_id = %s AND status = 'confirmed' LIMIT 1
"""  # noqa: S608


def _window_error(*, now: datetime, event_time: datetime, sale_starts_at: datetime | None) -> DomainError | None:
    """Return the first of API.md's sale-window refusals that applies, if any."""
    window = sale_window(now=now, event_time=event_time, sale_starts_at=sale_starts_at)
    if window == SaleStatus.UPCOMING:
        return SaleNotOpen(extra={"sale_starts_at": sale_starts_at.isoformat().replace("+00:00", "Z")})
    if window == SaleStatus.CLOSED:
        return SaleClosed()
    return None


def _confirmed_reservation_id(*, user: User, ticket_id: UUID | str) -> UUID | None:
    """Return the user's confirmed reservation of the ticket (the sold-out path asks on every call)."""
    with connection.cursor() as cursor:
        cursor.execute(_SELECT_HELD_RESERVATION, [user.pk, ticket_id])
        row = cursor.fetchone()
    return row[0] if row else None


def _refuse_from_flag(*, user: User, ticket_id: UUID | str) -> None:
    """Answer a sold-out ticket from its Redis flag, without a transaction or any lock."""
    flag = sold_out_flag_get(ticket_id=ticket_id)
    if flag is None:
        return
    error = _window_error(now=timezone.now(), event_time=flag.event_time, sale_starts_at=flag.sale_starts_at)
    if error is None:
        held = _confirmed_reservation_id(user=user, ticket_id=ticket_id)
        error = AlreadyReserved(extra={"reservation": str(held)}) if held else SoldOut()
    raise error


def reservation_create(*, user: User, ticket_id: UUID | str, idempotency_key: str | None = None) -> Reservation:
    """Book one seat of a ticket for the user, first come, first served.

    Raises a DomainError for every refusal (in API.md's order), Busy when a lock is not granted
    in time, and IdempotentReplay when the key was answered before.
    """
    try:
        return _reservation_create(user=user, ticket_id=ticket_id, idempotency_key=idempotency_key)
    except DomainError as error:
        metrics.BOOKINGS.labels(outcome=error.code).inc()
        raise
    except IdempotentReplay:
        metrics.BOOKINGS.labels(outcome="replayed").inc()
        raise


def _reservation_create(*, user: User, ticket_id: UUID | str, idempotency_key: str | None) -> Reservation:
    key = idempotency_key
    if key:
        idempotency_replay(user=user, key=key, ticket_id=ticket_id)
    try:
        _refuse_from_flag(user=user, ticket_id=ticket_id)
    except DomainError as error:
        idempotency_remember_refusal(user=user, key=key, ticket_id=ticket_id, error=error)

    with ticket_lock(ticket_id):
        try:
            reservation, error, key_taken = _book(user=user, ticket_id=ticket_id, key=key)
        except IntegrityError as exc:
            constraint = getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None)
            # The constraints are the net under the checks; their violations answer like the checks.
            # Such an answer is not kept for an Idempotency-Key (its record rolled back with the
            # rest); under the row lock this path is not expected to run at all.
            if constraint == ONE_CONFIRMED_CONSTRAINT:
                held = _confirmed_reservation_id(user=user, ticket_id=ticket_id)
                raise AlreadyReserved(extra={"reservation": str(held)}) from exc
            elif constraint == WITHIN_QUANTITY_CONSTRAINT:
                raise SoldOut() from exc
            else:
                raise
    if key_taken:
        # A copy of this request with the same key answered first: send its answer.
        idempotency_replay(user=user, key=key, ticket_id=ticket_id)
        raise Busy(retry_after=1)
    if error is not None:
        raise error
    metrics.BOOKINGS.labels(outcome="created").inc()
    return reservation


def _select_ticket_for_update(*, ticket_id: UUID | str, user: User) -> tuple[Ticket | None, UUID | None]:
    """Lock the ticket's row and return it with the user's confirmed reservation id, if any."""
    with connection.cursor() as cursor:
        cursor.execute(_SELECT_TICKET_FOR_UPDATE, [user.pk, ticket_id])
        row = cursor.fetchone()
    if row is None:
        return None, None
    title, quantity, issued_count, event_time, sale_starts_at, held = row
    ticket = Ticket(
        id=uuid.UUID(str(ticket_id)),
        title=title,
        quantity=quantity,
        issued_count=issued_count,
        event_time=event_time,
        sale_starts_at=sale_starts_at,
    )
    return ticket, held


def _book(*, user: User, ticket_id: UUID | str, key: str | None) -> tuple[Reservation | None, DomainError | None, bool]:
    """Run the booking transaction; return (reservation, refusal, key already answered elsewhere).

    A refusal commits nothing but its Idempotency-Key record, which is stored under the same row
    lock, so a concurrent copy of the request sees it.
    """
    with transaction.atomic(durable=True), busy_on_lock_timeout():
        ticket, held = _select_ticket_for_update(ticket_id=ticket_id, user=user)
        now = timezone.now()
        if ticket is None:
            error: DomainError | None = TicketNotFound()
        else:
            error = _window_error(now=now, event_time=ticket.event_time, sale_starts_at=ticket.sale_starts_at)
            if error is None and held is not None:
                error = AlreadyReserved(extra={"reservation": str(held)})
            if error is None and ticket.issued_count >= ticket.quantity:
                error = SoldOut()
                transaction.on_commit(lambda: sold_out_flag_set(ticket=ticket))

        if error is not None:
            if key and not idempotency_remember(user=user, key=key, ticket_id=ticket_id, answer=error_answer(error)):
                return None, None, True
            return None, error, False

        reservation = Reservation(
            id=uuid.uuid4(), user=user, ticket=ticket, status=ReservationStatus.CONFIRMED, reserved_at=now
        )
        if key and not idempotency_remember(
            user=user, key=key, ticket_id=ticket_id, answer=created_answer(reservation)
        ):
            return None, None, True
        with connection.cursor() as cursor:
            cursor.execute(_INSERT_RESERVATION_AND_COUNT, [reservation.id, user.pk, ticket.pk, now])
        if ticket.issued_count + 1 >= ticket.quantity:
            transaction.on_commit(lambda: sold_out_flag_set(ticket=ticket))
    return reservation, None, False


# Cancelling -------------------------------------------------------------------------------------


def reservation_cancel(*, user: User, reservation_id: UUID | str) -> Reservation:
    """Cancel the user's reservation and return its seat to stock, under the booking locks.

    Another user's reservation is not found (404). `already_cancelled` wins over `sale_closed`.
    """
    ticket_id = Reservation.objects.filter(pk=reservation_id, user=user).values_list("ticket_id", flat=True).get()
    with ticket_lock(ticket_id), transaction.atomic(durable=True), busy_on_lock_timeout():
        ticket = Ticket.objects.select_for_update().only("id", "title", "event_time").get(pk=ticket_id)
        reservation = Reservation.objects.select_for_update().get(pk=reservation_id, user=user)
        if reservation.status == ReservationStatus.CANCELLED:
            raise AlreadyCancelled()
        now = timezone.now()
        if now >= ticket.event_time:
            raise SaleClosed()
        reservation.status = ReservationStatus.CANCELLED
        reservation.cancelled_at = now
        reservation.save(update_fields=["status", "cancelled_at"])
        Ticket.objects.filter(pk=ticket_id).update(issued_count=F("issued_count") - 1)
        # A seat came back: the sold-out flag must not refuse it.
        transaction.on_commit(lambda: sold_out_flag_clear(ticket_id=ticket_id))
    metrics.CANCELLATIONS.inc()
    reservation.ticket = ticket
    return reservation
