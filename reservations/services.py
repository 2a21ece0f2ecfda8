"""Booking: the only code that changes `issued_count` or a reservation's status.

Locking order, the same for booking, cancelling and staff edits of a ticket (tickets.services),
so no cycle can form:

1. the per-ticket Redis lock (tickets.locks), taken outside the transaction so that a flash crowd
   waits in Redis, not in database connections. Bookings wait for it in the ticket's booking line
   (reservations.line), first in, first out; whoever holds it books the waiting bookings in
   batches. A booking not answered within BOOKING_LOCK_WAIT seconds leaves the line: 503 `busy`.
   Redis unreachable: skipped, and the outage logged once per interval; each booking is then
   booked alone under the row lock, which still serialises them.
2. `transaction.atomic(durable=True)`: durable because an outer transaction would commit after the
   Redis lock is released.
3. `SELECT ... FOR UPDATE` on the ticket row (reservations.batch): the real guarantee. Its wait is
   bounded by `lock_timeout`; a wait over the limit is a 503 `busy`.
4. the checks in API.md's order for each booking of the batch in arrival order, then the INSERT of
   its reservations and `issued_count = issued_count + n` in one statement.
5. commit, then one script answers each booking, writes the ticket's mirror and either takes the
   next batch or releases the lock.

If the Redis lock expires while its holder still works, a second holder can enter; it then waits
on the row lock, and the check constraint and the partial unique constraint stay as the net. A
waiting request that must answer without its holder's answer settles under the row lock
(reservations.batch.booking_settle), so its answer is true whatever the holder does later.

Every request is answered within BOOKING_LOCK_WAIT plus at most REDIS_TIMEOUT, SETTLE_GRACE and
the settle's own row-lock wait (reservations.batch.SETTLE_LOCK_MS), also while Redis stalls.
"""

import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.db import DatabaseError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.authentication import TokenBearer, check_caller
from accounts.models import User
from fastticket import redis as ft_redis
from fastticket.db import busy_on_lock_timeout
from fastticket.errors import (
    AlreadyCancelled,
    AlreadyReserved,
    Busy,
    DomainError,
    IdempotentReplay,
    NotAdmitted,
    NoWaitingRoom,
    SaleClosed,
    SaleNotOpen,
    SoldOut,
    TicketNotFound,
    Unavailable,
)
from reservations import metrics
from reservations.batch import (
    Outcome,
    account_and_seat_read,
    answer_raise,
    answer_refused,
    booking_batch_book,
    booking_one,
    booking_read,
    booking_settle,
    window_error,
)
from reservations.idempotency import idempotency_remember_refusal, idempotency_replay
from reservations.line import Batch, Entry, Line
from reservations.models import Reservation, ReservationStatus
from reservations.refusals import refusal_note
from reservations.room import MirrorMissing, Place, place_of, room_join, room_leave
from reservations.serializers import place_representation
from tickets.locks import TicketLock, lock_expire_ms, ticket_lock
from tickets.models import Ticket
from tickets.sale_state import sale_key, sale_state_args, sale_state_rebuild, sale_state_write

logger = logging.getLogger(__name__)

# After its deadline, a booking a holder has taken waits this much longer for the holder's answer
# before it settles under the row lock.
SETTLE_GRACE = 0.3


def reservation_create(*, user: User, ticket_id: UUID | str, idempotency_key: str | None = None) -> Reservation:
    """Book one seat of a ticket for the user, first come, first served.

    Raises a DomainError for every refusal (in API.md's order), Busy when the booking was not
    answered in time, and IdempotentReplay when the key was answered before.
    """
    try:
        data = _reserve(user=user, ticket_id=str(ticket_id), key=idempotency_key)
    except DomainError as error:
        metrics.BOOKINGS.labels(outcome=error.code).inc()
        raise
    except IdempotentReplay:
        metrics.BOOKINGS.labels(outcome="replayed").inc()
        raise
    metrics.BOOKINGS.labels(outcome="created").inc()
    return _reservation(data)


def _reservation(data: dict) -> Reservation:
    """Rebuild the reservation a batch booked (perhaps in another process) from its answer."""
    ticket = Ticket(
        id=uuid.UUID(data["ticket"]["id"]),
        title=data["ticket"]["title"],
        event_time=datetime.fromisoformat(data["ticket"]["event_time"]),
    )
    return Reservation(
        id=uuid.UUID(data["id"]),
        ticket=ticket,
        status=data["status"],
        reserved_at=datetime.fromisoformat(data["reserved_at"]),
        cancelled_at=None,
    )


def _reserve(*, user: User | TokenBearer, ticket_id: str, key: str | None) -> dict:
    if key:
        idempotency_replay(user_id=user.pk, key=key, ticket_id=ticket_id)
    # One statement, no lock: the caller's account, the ticket and the caller's seat. Every
    # refusal but not_admitted is decided here, from the database, before any Redis call.
    read = booking_read(ticket_id=ticket_id, user_id=str(user.pk))
    check_caller(user, read.account)
    client = ft_redis.client("locks")
    if client is None and read.ticket is not None and read.ticket.waiting_room:
        # API.md: while Redis is unreachable a ticket with a waiting room sells nothing (its line
        # lives there) and answers 503, whatever else its row would say.
        raise Unavailable(retry_after=2)
    error = _first_refusal(read.ticket, read.held)
    if error is not None:
        if error.code == "sold_out":
            refusal_note(ticket_id=ticket_id, code=error.code)
        idempotency_remember_refusal(user=user, key=key, ticket_id=ticket_id, error=error)
    deadline = time.monotonic() + max(settings.BOOKING_LOCK_WAIT, 0)
    entry = Entry(
        rid=str(uuid.uuid4()),
        user_id=str(user.pk),
        key=key,
        deadline_ms=int(time.time() * 1000 + max(settings.BOOKING_LOCK_WAIT, 0) * 1000),
    )
    if client is None:
        return _alone(ticket_id=ticket_id, entry=entry)
    lock = TicketLock(client, ticket_id)
    line = Line(client, keys=lock.keys, mirror=sale_key(ticket_id), ticket_id=ticket_id, holder_id=lock.id)
    try:
        return answer_raise(_through_line(line, user=user, entry=entry, ticket=read.ticket, deadline=deadline))
    except ft_redis.REDIS_ERRORS as exc:
        ft_redis.mark_down(exc)
        # The line may still hold this booking: withdraw it for good, then book alone.
        settled = booking_settle(ticket_id=ticket_id, entry=entry)
        if settled.booked or time.monotonic() >= deadline:
            if not settled.booked:
                refusal_note(ticket_id=ticket_id, code="busy")
            return answer_raise(settled.answer)
        fresh = Entry(str(uuid.uuid4()), entry.user_id, key, entry.deadline_ms)
        return _alone(ticket_id=ticket_id, entry=fresh)


def _alone(*, ticket_id: str, entry: Entry) -> dict:
    """Book without Redis: under the row lock alone, one by one."""
    return answer_raise(booking_one(ticket_id=ticket_id, entry=entry).answer)


def _knobs() -> dict:
    return {"lock_ms": lock_expire_ms(), "batch_max": settings.BOOKING_BATCH_MAX, "batch_id": uuid.uuid4().hex}


def _through_line(line: Line, *, user: User | TokenBearer, entry: Entry, ticket: Ticket, deadline: float) -> bytes:
    """Enter the ticket's line and come back with this booking's answer."""
    hold_ms = int((settings.BOOKING_LOCK_WAIT + SETTLE_GRACE) * 1000 + 2000)
    started = time.monotonic()
    entered = line.enter(entry, sale_row=sale_state_args(ticket), hold_ms=hold_ms, **_knobs())
    if entered.kind == "lead":
        metrics.LINE_WAIT.observe(0)
        return _lead(line, entered.batch, entry, deadline, taken_at=started)
    if entered.kind == "wait":
        answer = _wait(line, entry, deadline)
        metrics.LINE_WAIT.observe(time.monotonic() - started)
        return answer
    # The ticket has a waiting room and the caller holds no unexpired admission.
    place = None if entered.place is None else place_representation(place_of(ticket_id=ticket.pk, state=entered.place))
    refused = NotAdmitted(extra={"queue": place})
    idempotency_remember_refusal(user=user, key=entry.key, ticket_id=line.ticket_id, error=refused)
    raise refused


def _lead(line: Line, batch: Batch, entry: Entry, deadline: float, *, taken_at: float) -> bytes:
    """Hold the ticket's lock: book batches until this booking is answered, then hand the lock on."""
    own: bytes | None = None
    while True:
        outcomes, sale_row = _book(line.ticket_id, batch)
        for taken, outcome in zip(batch.entries, outcomes, strict=True):
            if taken.rid == entry.rid:
                own = outcome.answer
        refused = (sum(o.code == "sold_out" for o in outcomes), sum(o.code == "busy" for o in outcomes))
        answers = [(taken, o.answer, o.booked) for taken, o in zip(batch.entries, outcomes, strict=True)]
        following = line.finish(batch, answers, sale_row=sale_row, refused=refused, go_on=own is None, **_next_knobs())
        finished_at = time.monotonic()
        metrics.LOCK_HELD.observe(finished_at - taken_at)
        metrics.BATCH_SIZE.observe(len(batch.entries))
        metrics.BATCH_BOOKINGS.observe(sum(o.booked for o in outcomes))
        if following == "lost":
            # The lock expired while this holder worked; the row lock kept the batch correct.
            logger.warning("ticket lock %s expired before release", line.keys[0])
        if not isinstance(following, Batch):
            break
        batch, taken_at = following, finished_at
    if own is None:
        # The lock expired under us before our own booking's batch: it is still in the line.
        return _wait(line, entry, deadline)
    return own


def _next_knobs() -> dict:
    knobs = _knobs()
    return {"lock_ms": knobs["lock_ms"], "batch_max": knobs["batch_max"], "next_batch_id": knobs["batch_id"]}


def _book(ticket_id: str, batch: Batch) -> tuple[list[Outcome], list[int]]:
    """Book a batch; when its transaction fails, each of its bookings hears that failure (nothing was booked)."""
    try:
        result = booking_batch_book(ticket_id=ticket_id, entries=batch.entries)
    except (Busy, Unavailable) as error:
        failed = error
    except DatabaseError:
        failed = Unavailable(retry_after=2)
    else:
        return result.outcomes, result.sale_row or _no_ticket_row()
    answer = answer_refused(failed)
    return [Outcome(answer, code=failed.code) for _ in batch.entries], _no_ticket_row()


def _no_ticket_row() -> list[int]:
    # Version -1 never lands (tickets.sale_state): the mirror stays as it is.
    return [-1, 0, 0, -1, 0, 0, 1, 30, 0]


def _wait(line: Line, entry: Entry, deadline: float) -> bytes:
    """Wait in the line for this booking's answer, or for the lock to come free, until the deadline."""
    while (remaining := deadline - time.monotonic()) > 0:
        answer = line.wait(entry.rid, remaining)
        if answer:
            return answer
        # Woken up (the lock was released), or a slice of the wait is over (its holder may have died
        # and its lock expired): take the lock if it is free.
        asked_at = time.monotonic()
        batch = line.try_lead(entry.rid, **_knobs())
        if isinstance(batch, Batch):
            return _lead(line, batch, entry, deadline, taken_at=asked_at)
    status, answer = line.withdraw(entry)
    if status == "withdrawn":
        raise Busy(retry_after=1)
    if answer:
        return answer
    # A holder has taken this booking: its answer is on the way, or the holder died.
    grace = time.monotonic() + SETTLE_GRACE
    while (remaining := grace - time.monotonic()) > 0:
        answer = line.wait(entry.rid, remaining)
        if answer:
            return answer
    settled = booking_settle(ticket_id=line.ticket_id, entry=entry)
    if not settled.booked:
        refusal_note(ticket_id=line.ticket_id, code="busy")
    try:
        line.admission_done(entry, booked=settled.booked)
    except ft_redis.REDIS_ERRORS as exc:
        # The admission ends by itself when its hold runs out (reservations.room).
        ft_redis.mark_down(exc)
    return settled.answer


def _first_refusal(ticket: Ticket | None, held: str | None) -> DomainError | None:
    """Return the first refusal of API.md's order that applies now (not_admitted aside), if any."""
    if ticket is None:
        return TicketNotFound()
    error = window_error(now=timezone.now(), event_time=ticket.event_time, sale_starts_at=ticket.sale_starts_at)
    if error is None and held is not None:
        error = AlreadyReserved(extra={"reservation": str(held)})
    if error is None and ticket.issued_count >= ticket.quantity:
        error = SoldOut()
    return error


# Cancelling -------------------------------------------------------------------------------------


def reservation_cancel(*, user: User, reservation_id: UUID | str, by: User | None = None) -> Reservation:
    """Cancel the user's reservation and return its seat to stock, under the booking locks.

    Another user's reservation is not found (404). `already_cancelled` wins over `sale_closed`.
    The ticket's mirror is rewritten after commit, so the seat can be booked at once. Given the
    staff member who cancels for the user (`by`), the admin's history entries of the reservation
    and of its ticket are written in the cancel's own transaction, as a ticket change's are.
    """
    ticket_id = Reservation.objects.filter(pk=reservation_id, user=user).values_list("ticket_id", flat=True).get()
    with ticket_lock(ticket_id), transaction.atomic(durable=True), busy_on_lock_timeout():
        ticket = Ticket.objects.select_for_update().get(pk=ticket_id)
        reservation = Reservation.objects.select_for_update().get(pk=reservation_id, user=user)
        if reservation.status == ReservationStatus.CANCELLED:
            raise AlreadyCancelled()
        now = timezone.now()
        if now >= ticket.event_time:
            raise SaleClosed()
        reservation.status = ReservationStatus.CANCELLED
        reservation.cancelled_at = now
        reservation.save(update_fields=["status", "cancelled_at"])
        Ticket.objects.filter(pk=ticket_id).update(
            issued_count=F("issued_count") - 1, sale_version=F("sale_version") + 1
        )
        ticket.issued_count -= 1
        ticket.sale_version += 1
        if by is not None:
            _log_staff_cancel(by=by, user=user, reservation=reservation, ticket=ticket)
        # A seat came back: the mirror must not hint "sold out" any more.
        transaction.on_commit(lambda: sale_state_write(ticket=ticket))
    metrics.CANCELLATIONS.inc()
    reservation.ticket = ticket
    return reservation


def _log_staff_cancel(*, by: User, user: User, reservation: Reservation, ticket: Ticket) -> None:
    """Record a staff cancel in the history of the reservation and of its ticket."""
    who = f"{user.username} <{user.email}>"
    for obj, message in (
        (reservation, f"Cancelled for {who}; the seat of “{ticket.title}” went back on sale."),
        (ticket, f"Cancelled reservation {reservation.pk} of {who}; the seat went back on sale."),
    ):
        LogEntry.objects.log_actions(
            user_id=by.pk, queryset=[obj], action_flag=CHANGE, change_message=message, single_object=True
        )


# The waiting room -------------------------------------------------------------------------------


def queue_join(*, user: User | TokenBearer, ticket_id: UUID | str) -> tuple[Place, bool]:
    """Join the ticket's waiting room at the back; return the place and whether it is new.

    A caller who holds a place that has not ended gets it back as it is: joining twice never
    moves anyone. Refusals in API.md's order for joining: no_waiting_room, sale_not_open,
    sale_closed, already_reserved, sold_out. Reads, in one statement, only the caller's account
    (a TokenBearer's is checked here, as booking checks it) and reservation of the ticket.
    """
    read = account_and_seat_read(ticket_id=str(ticket_id), user_id=str(user.pk))
    check_caller(user, read.account)
    held = read.held
    joined = with_mirror(
        ticket_id,
        lambda: room_join(ticket_id=ticket_id, user_id=user.pk, holds_reservation=held is not None),
        no_room=NoWaitingRoom,
    )
    if joined.place is not None:
        return place_of(ticket_id=ticket_id, state=joined.place), joined.outcome == "joined"
    if joined.outcome == "sale_not_open":
        starts = datetime.fromtimestamp(joined.sale_starts_us / 1_000_000, tz=UTC)
        opens = starts - timedelta(minutes=settings.QUEUE_OPENS_MINUTES)
        raise SaleNotOpen(extra={"sale_starts_at": _iso(starts), "queue_opens_at": _iso(opens)})
    if joined.outcome == "already_reserved":
        raise AlreadyReserved(extra={"reservation": str(held)})
    raise {"no_waiting_room": NoWaitingRoom, "sale_closed": SaleClosed, "sold_out": SoldOut}[joined.outcome]()


def queue_leave(*, user: User, ticket_id: UUID | str) -> None:
    """Give up the caller's place (an admission it held goes to the next place); 404 when none."""
    if not with_mirror(ticket_id, lambda: room_leave(ticket_id=ticket_id, user_id=user.pk), no_room=NoPlace):
        raise NoPlace()


class NoPlace(Reservation.DoesNotExist):
    """The caller holds no place in the ticket's waiting room (404)."""


def with_mirror(ticket_id: UUID | str, step, *, no_room: type[Exception]):
    """Run a waiting-room step, rebuilding the ticket's mirror first when Redis lacks it.

    While Redis is unreachable, a ticket with a waiting room answers 503 `unavailable` (its queue
    lives in Redis); one without raises `no_room`, as it would with Redis up.
    """
    try:
        try:
            return step()
        except MirrorMissing:
            if not sale_state_rebuild(ticket_id=ticket_id):
                raise TicketNotFound() from None
            return step()
    except ft_redis.RedisUnavailable:
        has_room = Ticket.objects.filter(pk=ticket_id).values_list("waiting_room", flat=True).first()
        if has_room is None:
            raise TicketNotFound() from None
        if not has_room:
            raise no_room() from None
        raise Unavailable(retry_after=2) from None


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
