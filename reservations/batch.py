"""Booking a batch of a ticket's line in one transaction, and settling a booking apart from its line.

`booking_batch_book` runs under the ticket's Redis lock (reservations.line), in one
`transaction.atomic(durable=True)`: durable because an outer transaction would commit after the
lock is released. Its statements are written out (what `select_for_update()` and the ORM would
send, plus the batch's own reads), with table, column and status names from the models, and sent
in two round trips by psycopg's pipeline mode:

1. BEGIN, this transaction's bounds (`lock_timeout` from the oldest booking's deadline,
   `idle_in_transaction_session_timeout`), `SELECT ... FOR UPDATE` of the ticket row, the seats
   its users hold and which of its bookings were withdrawn, and the claim of its Idempotency-Keys;
2. the checks of API.md for each booking in arrival order, as if each came alone (Python), then
   all confirmed reservations and `issued_count` raised by their number in one statement, the
   keys' answers, and COMMIT.

The check constraint (`issued_count <= quantity`) and the partial unique index (one confirmed
reservation per user and ticket) stay as the net: a violation fails the batch, which then answers
each of its bookings as `booking_one` would.

`booking_settle` is for a waiting request that must answer without its holder's answer: under the
ticket's row lock it withdraws its booking (reservations.models.BookingWithdrawal) unless it was
booked, so its answer is true whatever its holder does later.
"""

import json
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from accounts.authentication import Account
from accounts.models import User
from fastticket.db import busy_on_lock_timeout
from fastticket.errors import (
    AlreadyReserved,
    Busy,
    DomainError,
    IdempotencyKeyReused,
    IdempotentReplay,
    NotAdmitted,
    SaleClosed,
    SaleNotOpen,
    SoldOut,
    TicketNotFound,
    Unavailable,
)
from fastticket.sql import columns, require_transaction, table
from reservations.idempotency import IDEMPOTENCY_INSERT_COLUMNS, IDEMPOTENCY_TTL, idempotency_replay
from reservations.line import Entry
from reservations.models import BookingWithdrawal, IdempotencyRecord, Reservation, ReservationStatus
from reservations.serializers import reservation_representation
from tickets.models import SaleStatus, Ticket, sale_window
from tickets.sale_state import sale_state_args

CONFIRMED = ReservationStatus.CONFIRMED.value
ONE_CONFIRMED_CONSTRAINT = "reservations_one_confirmed_per_user_ticket"
WITHIN_QUANTITY_CONSTRAINT = "tickets_issued_count_within_quantity"
# A holder frozen inside its transaction is cut off by PostgreSQL after this long, so that a
# settling request (which waits for the row lock) waits at most that much.
IDLE_IN_TRANSACTION_MS = 500
# A settling request's wait for the row lock: longer than a frozen holder can keep it.
SETTLE_LOCK_MS = 750
# A batch gives up the row lock's wait this long after its oldest booking's deadline, so that the
# bookings it took hear `busy` from it while they still wait for their answer.
LOCK_WAIT_PAST_DEADLINE_MS = 150


_T, _R, _W, _K = table(Ticket), table(Reservation), table(BookingWithdrawal), table(IdempotencyRecord)
_TICKET_COLUMNS = (
    "title",
    "quantity",
    "issued_count",
    "event_time",
    "sale_starts_at",
    "waiting_room",
    "admit_per_minute",
    "admission_seconds",
    "queue_generation",
    "sale_version",
)
# The columns each INSERT writes, in its order; tests/reservations/test_raw_sql.py fails when the
# model has others.
RESERVATION_INSERT_COLUMNS = ("id", "user", "ticket", "status", "reserved_at", "cancelled_at")
WITHDRAWAL_INSERT_COLUMNS = ("id", "ticket_id", "created_at")

_BOUNDS = "SELECT set_config('lock_timeout', %s, true), set_config('idle_in_transaction_session_timeout', %s, true)"
# What `Ticket.objects.select_for_update(of=("self",)).get(pk=...)` sends, for the columns the checks need.
_SELECT_TICKET_FOR_UPDATE = f"SELECT {columns(Ticket, *_TICKET_COLUMNS)} FROM {_T} WHERE id = %s FOR UPDATE OF {_T}"  # noqa: S608 (the models' names, never input)
_SELECT_HELD_AND_WITHDRAWN = f"""
    SELECT {columns(Reservation, "user")}, id FROM {_R}
     WHERE {columns(Reservation, "ticket")} = %s AND {columns(Reservation, "user")} = ANY(%s::uuid[])
       AND status = '{CONFIRMED}'
    UNION ALL
    SELECT NULL, id FROM {_W} WHERE id = ANY(%s::uuid[])
"""  # noqa: S608
# Claim the batch's Idempotency-Keys (absent, or older than their 24 hours): a key another request
# holds makes this statement wait for it, then not return it. Sorted, so two batches claiming the
# same keys take them in one order and cannot deadlock.
_CLAIM_KEYS = f"""
    INSERT INTO {_K} ({columns(IdempotencyRecord, *IDEMPOTENCY_INSERT_COLUMNS)})
    SELECT user_id, key, %s, 0, '', %s FROM unnest(%s::uuid[], %s::text[]) AS k(user_id, key)
    ON CONFLICT (user_id, key) DO UPDATE SET ticket_id = EXCLUDED.ticket_id, status_code = 0, body = '',
           created_at = EXCLUDED.created_at
     WHERE {_K}.created_at < %s
    RETURNING user_id, key
"""  # noqa: S608
_STORE_ANSWERS = f"""
    UPDATE {_K} AS k SET status_code = a.status_code, body = a.body
      FROM unnest(%s::uuid[], %s::text[], %s::int[], %s::bytea[]) AS a(user_id, key, status_code, body)
     WHERE k.user_id = a.user_id AND k.key = a.key
"""  # noqa: S608
_FORGET_CLAIMS = f"""
    DELETE FROM {_K} AS k USING unnest(%s::uuid[], %s::text[]) AS a(user_id, key)
     WHERE k.user_id = a.user_id AND k.key = a.key AND k.status_code = 0
"""  # noqa: S608
# The reservations and `issued_count = issued_count + n` in one statement: both or neither.
_INSERT_RESERVATIONS_AND_COUNT = f"""
    WITH booked AS (
        INSERT INTO {_R} ({columns(Reservation, *RESERVATION_INSERT_COLUMNS)})
        SELECT id, user_id, %s, '{CONFIRMED}', reserved_at, NULL
          FROM unnest(%s::uuid[], %s::uuid[], %s::timestamptz[]) AS v(id, user_id, reserved_at)
        RETURNING 1
    )
    UPDATE {_T} SET issued_count = issued_count + (SELECT count(*) FROM booked), sale_version = sale_version + 1
     WHERE id = %s
"""  # noqa: S608
_U = table(User)
# A booking's first statement, without any lock: the caller's account (as authentication would
# read it), the ticket row and the caller's confirmed reservation of it. Every refusal but
# not_admitted is decided from it exactly (a consistent snapshot), before any Redis call.
_SELECT_ACCOUNT_TICKET_AND_HELD = f"""
    SELECT u.{columns(User, "is_active")}, u.{columns(User, "password_version")}, t.id,
           {", ".join(f"t.{column}" for column in columns(Ticket, *_TICKET_COLUMNS).split(", "))},
           (SELECT r.id FROM {_R} r
             WHERE r.{columns(Reservation, "ticket")} = t.id AND r.{columns(Reservation, "user")} = u.id
               AND r.status = '{CONFIRMED}' LIMIT 1)
      FROM {_U} u LEFT JOIN {_T} t ON t.id = %s
     WHERE u.id = %s
"""  # noqa: S608
# A join's one statement: the caller's account and confirmed reservation of the ticket (no ticket
# row: the waiting room's checks read the ticket's mirror in Redis).
_SELECT_ACCOUNT_AND_HELD = f"""
    SELECT u.{columns(User, "is_active")}, u.{columns(User, "password_version")},
           (SELECT r.id FROM {_R} r
             WHERE r.{columns(Reservation, "ticket")} = %s AND r.{columns(Reservation, "user")} = u.id
               AND r.status = '{CONFIRMED}' LIMIT 1)
      FROM {_U} u
     WHERE u.id = %s
"""  # noqa: S608
_SETTLE_BOUND = "SELECT set_config('lock_timeout', %s, true)"
_LOCK_TICKET = f"SELECT 1 FROM {_T} WHERE id = %s FOR UPDATE OF {_T}"  # noqa: S608
# The booking's reservation if it was booked, else its withdrawal, in one statement.
_SETTLE = f"""
    WITH found AS (
        SELECT r.reserved_at, t.title, t.event_time
          FROM {_R} r JOIN {_T} t ON t.id = r.{columns(Reservation, "ticket")}
         WHERE r.id = %s AND r.status = '{CONFIRMED}'
    ), withdrawn AS (
        INSERT INTO {_W} ({columns(BookingWithdrawal, *WITHDRAWAL_INSERT_COLUMNS)})
        SELECT %s, %s, %s WHERE NOT EXISTS (SELECT 1 FROM found)
        ON CONFLICT (id) DO NOTHING
    )
    SELECT reserved_at, title, event_time FROM found
"""  # noqa: S608


def _render(data: object) -> bytes:
    return JSONRenderer().render(data)


# Answers as they travel from a batch's holder to the request that waits for them.
def answer_created(body: bytes) -> bytes:
    return b"C" + body


def answer_refused(error: DomainError) -> bytes:
    return b"E" + error.code.encode() + b"\n" + json.dumps([error.extra, error.retry_after]).encode()


def answer_replayed(status_code: int, body: bytes) -> bytes:
    return b"P" + str(status_code).encode() + b"\n" + body


def answer_raise(answer: bytes) -> dict:
    """Return a created reservation's representation; raise the refusal or the replay an answer carries."""
    kind, rest = answer[:1], answer[1:]
    if kind == b"C":
        return json.loads(rest)
    head, _, tail = rest.partition(b"\n")
    if kind == b"P":
        raise IdempotentReplay(int(head), tail)
    extra, retry_after = json.loads(tail)
    raise DomainError.by_code[head.decode()](extra=extra, retry_after=retry_after)


@dataclass(frozen=True)
class Outcome:
    answer: bytes
    booked: bool = False
    code: str = ""  # a refusal's code, for the sales view's counts


@dataclass(frozen=True)
class BatchResult:
    outcomes: list[Outcome]
    sale_row: list[int] | None  # the ticket row after the batch, for its mirror; None: no such ticket


@contextmanager
def _pipeline() -> Iterator[None]:
    """Send the block's statements without waiting for each (psycopg's pipeline mode), errors as Django's.

    Results come back when a statement's result is fetched or the transaction commits.
    """
    connection.ensure_connection()
    with connection.wrap_database_errors, connection.connection.pipeline():
        yield


def window_error(*, now: datetime, event_time: datetime, sale_starts_at: datetime | None) -> DomainError | None:
    """Return the first of API.md's sale-window refusals that applies, if any."""
    window = sale_window(now=now, event_time=event_time, sale_starts_at=sale_starts_at)
    if window == SaleStatus.UPCOMING:
        return SaleNotOpen(extra={"sale_starts_at": sale_starts_at.isoformat().replace("+00:00", "Z")})
    if window == SaleStatus.CLOSED:
        return SaleClosed()
    return None


def _lock_timeout_ms(entries: Sequence[Entry]) -> int:
    """Wait for the row lock until a little after the oldest booking's deadline."""
    oldest = min(entry.deadline_ms for entry in entries)
    wait = oldest - int(time.time() * 1000) + LOCK_WAIT_PAST_DEADLINE_MS
    return max(50, min(wait, settings.BOOKING_LOCK_WAIT * 1000))


def _ticket(ticket_id: str, row: tuple) -> Ticket:
    return Ticket(id=uuid.UUID(ticket_id), **dict(zip(_TICKET_COLUMNS, row, strict=True)))


def booking_batch_book(*, ticket_id: str, entries: Sequence[Entry], redis_up: bool = True) -> BatchResult:
    """Book a batch of a ticket's bookings, in arrival order; return each one's outcome.

    Each booking gets exactly the answer it would get alone: sale_not_open, sale_closed,
    already_reserved (with its id), sold_out once the seats run out, not_admitted for a
    waiting-room ticket without an admission (503 unavailable while Redis is down), or 201.
    A repeat of an Idempotency-Key gets its first answer (also a repeat inside the batch).
    Raises Busy when the row lock is not granted in time; nothing is booked then.
    """
    keyed = sorted({(entry.user_id, entry.key) for entry in entries if entry.key})
    users = sorted({entry.user_id for entry in entries})
    now = timezone.now()
    # The bounds are the transaction's own (SET LOCAL). Only a test wraps a durable transaction in
    # one of its own, which a frozen-holder cut-off would then end: there, leave it at its default.
    idle_ms = 0 if connection.in_atomic_block else IDLE_IN_TRANSACTION_MS
    try:
        # One pipeline around the transaction: the locked read and what it needs go in one round
        # trip, the writes in one more together with the COMMIT (which syncs the pipeline).
        with busy_on_lock_timeout(), _pipeline(), transaction.atomic(durable=True):
            with connection.cursor() as bounds, connection.cursor() as locked, connection.cursor() as held:
                claims = connection.cursor()
                require_transaction()
                bounds.execute(_BOUNDS, [f"{_lock_timeout_ms(entries)}ms", f"{idle_ms}ms"])
                locked.execute(_SELECT_TICKET_FOR_UPDATE, [ticket_id])
                held.execute(_SELECT_HELD_AND_WITHDRAWN, [ticket_id, users, [entry.rid for entry in entries]])
                if keyed:
                    claims.execute(
                        _CLAIM_KEYS,
                        [ticket_id, now, [u for u, _ in keyed], [k for _, k in keyed], now - IDEMPOTENCY_TTL],
                    )
                row = locked.fetchone()
                holding: dict[str, str] = {}
                withdrawn: set[str] = set()
                for user_id, rid in held.fetchall():
                    if user_id is None:
                        withdrawn.add(str(rid))
                    else:
                        holding[str(user_id)] = str(rid)
                claimed = {(str(u), k) for u, k in claims.fetchall()} if keyed else set()
                claims.close()
            ticket = _ticket(ticket_id, row) if row is not None else None
            decided = _decide(
                entries,
                ticket=ticket,
                holding=holding,
                withdrawn=withdrawn,
                claimed=claimed,
                now=now,
                redis_up=redis_up,
            )
            _write(ticket_id, decided, claimed=claimed)
    except IntegrityError as exc:
        # The constraints are the net under the checks; under the row lock this is not expected.
        constraint = getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None)
        if constraint not in (ONE_CONFIRMED_CONSTRAINT, WITHIN_QUANTITY_CONSTRAINT):
            raise
        raise Busy(retry_after=1) from exc
    outcomes = [_after_commit(entry, result, ticket_id) for entry, result in zip(entries, decided.results, strict=True)]
    if ticket is None:
        return BatchResult(outcomes, None)
    ticket.issued_count += decided.booked
    ticket.sale_version += 1 if decided.booked else 0
    return BatchResult(outcomes, sale_state_args(ticket))


@dataclass
class _Decided:
    """Each booking's result, in the batch's order: ("book", reserved_at, body), ("refuse", error),
    ("replay", status, body) (a repeat of a key earlier in the batch), ("conflict",) (its key was
    answered by another request) or ("withdrawn",)."""

    entries: Sequence[Entry]
    results: list[tuple]
    booked: int = 0

    def answers(self, claimed: set[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, bytes]]:
        """The first answer to each claimed key, as it is stored."""
        answers = {}
        for entry, result in zip(self.entries, self.results, strict=True):
            if entry.key and (entry.user_id, entry.key) in claimed and result[0] in ("book", "refuse"):
                error = result[1] if result[0] == "refuse" else None
                answers[(entry.user_id, entry.key)] = (
                    (error.status_code, _render(error.body())) if error else (201, result[2])
                )
        return answers


def _decide(
    entries: Sequence[Entry],
    *,
    ticket: Ticket | None,
    holding: dict[str, str],
    withdrawn: set[str],
    claimed: set[tuple[str, str]],
    now: datetime,
    redis_up: bool,
) -> _Decided:
    """Check each booking in arrival order, as if it came alone (API.md's order of refusals)."""
    decided = _Decided(entries, [])
    answered: dict[tuple[str, str], tuple[int, bytes]] = {}
    window = (
        None
        if ticket is None
        else window_error(now=now, event_time=ticket.event_time, sale_starts_at=ticket.sale_starts_at)
    )
    remaining = 0 if ticket is None else ticket.quantity - ticket.issued_count
    for entry in entries:
        key = (entry.user_id, entry.key) if entry.key else None
        if entry.rid in withdrawn:
            decided.results.append(("withdrawn",))
            continue
        if key in answered:
            decided.results.append(("replay", *answered[key]))
            continue
        if key and key not in claimed:
            decided.results.append(("conflict",))
            continue
        error: DomainError | None = None
        if ticket is None:
            error = TicketNotFound()
        elif window is not None:
            error = window
        elif entry.user_id in holding:
            error = AlreadyReserved(extra={"reservation": holding[entry.user_id]})
        elif remaining <= 0:
            error = SoldOut()
        elif ticket.waiting_room and not entry.room:
            # Its ticket got a waiting room after it entered the line (or Redis is down, which a
            # waiting room cannot do without).
            error = NotAdmitted(extra={"queue": None}) if redis_up else Unavailable(retry_after=2)
        if error is None:
            reserved_at = now + timedelta(microseconds=decided.booked)
            body = _render(
                reservation_representation(
                    id=entry.rid, ticket=ticket, status=CONFIRMED, reserved_at=reserved_at, cancelled_at=None
                )
            )
            decided.results.append(("book", reserved_at, body))
            decided.booked += 1
            remaining -= 1
            holding[entry.user_id] = entry.rid
            answer = (201, body)
        else:
            decided.results.append(("refuse", error))
            answer = (error.status_code, _render(error.body()))
        if key:
            answered[key] = answer
    return decided


def _write(ticket_id: str, decided: _Decided, *, claimed: set[tuple[str, str]]) -> None:
    """Store the batch's reservations, its count and its keys' answers (sent with the COMMIT)."""
    bookings = [
        (entry.rid, entry.user_id, result[1])
        for entry, result in zip(decided.entries, decided.results, strict=True)
        if result[0] == "book"
    ]
    answers = sorted(decided.answers(claimed).items())
    unanswered = sorted(claimed - {key for key, _ in answers})
    if not bookings and not answers and not unanswered:
        return
    with connection.cursor() as cursor:
        if bookings:
            cursor.execute(
                _INSERT_RESERVATIONS_AND_COUNT,
                [
                    ticket_id,
                    [rid for rid, _, _ in bookings],
                    [user_id for _, user_id, _ in bookings],
                    [reserved_at for _, _, reserved_at in bookings],
                    ticket_id,
                ],
            )
        if answers:
            cursor.execute(
                _STORE_ANSWERS,
                [
                    [user_id for (user_id, _), _ in answers],
                    [key for (_, key), _ in answers],
                    [status for _, (status, _) in answers],
                    [body for _, (_, body) in answers],
                ],
            )
        if unanswered:
            # Claimed for bookings that turned out withdrawn: their requests answered 503.
            cursor.execute(_FORGET_CLAIMS, [[u for u, _ in unanswered], [k for _, k in unanswered]])


def _after_commit(entry: Entry, result: tuple, ticket_id: str) -> Outcome:
    kind = result[0]
    if kind == "book":
        return Outcome(answer_created(result[2]), booked=True)
    if kind == "refuse":
        return Outcome(answer_refused(result[1]), code=result[1].code)
    if kind == "replay":
        return Outcome(answer_replayed(result[1], result[2]))
    if kind == "withdrawn":
        # Its request has answered already (503); nobody reads this.
        return Outcome(answer_refused(Busy(retry_after=1)))
    # Another request answered this key first (it committed before this batch claimed it).
    try:
        idempotency_replay(user_id=entry.user_id, key=entry.key, ticket_id=ticket_id)
    except IdempotentReplay as replay:
        return Outcome(answer_replayed(replay.status_code, replay.body))
    except IdempotencyKeyReused as error:
        return Outcome(answer_refused(error))
    return Outcome(answer_refused(Busy(retry_after=1)), code="busy")


@dataclass(frozen=True)
class Read:
    """What a booking's first statement found."""

    account: Account
    ticket: Ticket | None
    held: str | None  # the caller's confirmed reservation of the ticket


def booking_read(*, ticket_id: str, user_id: str) -> Read:
    """Read the caller's account, the ticket and the caller's seat of it, without any lock (one statement)."""
    with connection.cursor() as cursor:
        cursor.execute(_SELECT_ACCOUNT_TICKET_AND_HELD, [ticket_id, user_id])
        row = cursor.fetchone()
    if row is None:
        return Read((False, False, -1), None, None)
    is_active, password_version, found_ticket, *columns, held = row
    ticket = None if found_ticket is None else _ticket(ticket_id, columns)
    return Read((True, is_active, password_version), ticket, None if held is None else str(held))


def account_and_seat_read(*, ticket_id: str, user_id: str) -> Read:
    """Read the caller's account and the caller's seat of the ticket, not the ticket (one statement)."""
    with connection.cursor() as cursor:
        cursor.execute(_SELECT_ACCOUNT_AND_HELD, [ticket_id, user_id])
        row = cursor.fetchone()
    if row is None:
        return Read((False, False, -1), None, None)
    is_active, password_version, held = row
    return Read((True, is_active, password_version), None, None if held is None else str(held))


def booking_one(*, ticket_id: str, entry: Entry) -> Outcome:
    """Book one booking alone under the row lock (Redis is down: no line, no Redis lock)."""
    return booking_batch_book(ticket_id=ticket_id, entries=[entry], redis_up=False).outcomes[0]


def booking_settle(*, ticket_id: str, entry: Entry) -> Outcome:
    """Answer a booking without its holder: 201 if it was booked, else withdraw it for good (503).

    Under the ticket's row lock, which a holder keeps from its locked read to its commit: either
    the holder committed first (the reservation is there) or the withdrawal is, and every later
    batch skips it.
    """
    now = timezone.now()
    with (
        busy_on_lock_timeout(),
        _pipeline(),
        transaction.atomic(durable=True),
        connection.cursor() as bound,
        connection.cursor() as locked,
        connection.cursor() as settle,
    ):
        require_transaction()
        bound.execute(_SETTLE_BOUND, [f"{SETTLE_LOCK_MS}ms"])
        locked.execute(_LOCK_TICKET, [ticket_id])
        settle.execute(_SETTLE, [entry.rid, entry.rid, ticket_id, now])
        row = settle.fetchone()
    if row is None:
        return Outcome(answer_refused(Busy(retry_after=1)), code="busy")
    reserved_at, title, event_time = row
    ticket = Ticket(id=uuid.UUID(ticket_id), title=title, event_time=event_time)
    body = reservation_representation(
        id=entry.rid, ticket=ticket, status=CONFIRMED, reserved_at=reserved_at, cancelled_at=None
    )
    return Outcome(answer_created(_render(body)), booked=True)


def booking_withdrawals_purge() -> int:
    """Delete withdrawals older than a day (no batch can still hold their bookings); return how many."""
    deleted, _ = BookingWithdrawal.objects.filter(created_at__lt=timezone.now() - timedelta(days=1)).delete()
    return deleted
