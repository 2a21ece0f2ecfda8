"""Idempotency-Key answers: the first answer to a user's key, replayed byte for byte for 24 hours.

A 201's answer is stored in the booking's own transaction, and a refusal's under the same row
lock, so a copy of the request that waited on the locks finds it. Answers are rendered exactly as
the API renders them (the same serializer and JSON renderer).
"""

from dataclasses import dataclass
from datetime import timedelta
from typing import NoReturn
from uuid import UUID

from django.db import connection
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from accounts.models import User
from fastticket.errors import DomainError, IdempotencyKeyReused, IdempotentReplay
from fastticket.sql import columns, table
from reservations.models import IdempotencyRecord, Reservation

IDEMPOTENCY_TTL = timedelta(hours=24)

_TABLE = table(IdempotencyRecord)
# The columns the INSERTs of answers write (here and reservations.batch's claims), in their order;
# tests/reservations/test_raw_sql.py fails when the model has others.
IDEMPOTENCY_INSERT_COLUMNS = ("user", "key", "ticket_id", "status_code", "body", "created_at")
# INSERT ... ON CONFLICT: two copies of a request racing on one key never both store, and a
# record older than 24 hours is replaced in place.
_INSERT_ANSWER = f"""
    INSERT INTO {_TABLE} ({columns(IdempotencyRecord, *IDEMPOTENCY_INSERT_COLUMNS)})
    VALUES (%s, %s, %s, %s, %s, %s)
    ON CONFLICT ({columns(IdempotencyRecord, "user", "key")}) DO UPDATE
       SET ticket_id = EXCLUDED.ticket_id, status_code = EXCLUDED.status_code,
           body = EXCLUDED.body, created_at = EXCLUDED.created_at
     WHERE {_TABLE}.created_at < %s
    RETURNING id
"""  # noqa: S608 (the models' names, never input)


@dataclass(frozen=True)
class Answer:
    status_code: int
    body: bytes


def created_answer(reservation: Reservation) -> Answer:
    """Return the 201 the API sends for a new reservation."""
    from reservations.serializers import ReservationSerializer

    return Answer(201, JSONRenderer().render(ReservationSerializer(reservation).data))


def error_answer(error: DomainError) -> Answer:
    """Return the answer the exception handler sends for a refusal."""
    return Answer(error.status_code, JSONRenderer().render(error.body()))


def idempotency_replay(*, user_id: UUID | str, key: str, ticket_id: UUID | str) -> None:
    """Raise the stored answer to this key (IdempotentReplay), 422 if it was for another ticket."""
    record = (
        IdempotencyRecord.objects.filter(user_id=user_id, key=key, created_at__gte=timezone.now() - IDEMPOTENCY_TTL)
        .only("ticket_id", "status_code", "body")
        .first()
    )
    if record is None:
        return
    if str(record.ticket_id) != str(ticket_id):
        raise IdempotencyKeyReused()
    raise IdempotentReplay(record.status_code, bytes(record.body))


def idempotency_remember(*, user: User, key: str, ticket_id: UUID | str, answer: Answer) -> bool:
    """Store the first answer to a key; return False if another request holds a live one."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT_ANSWER,
            [user.pk, key, str(ticket_id), answer.status_code, answer.body, now, now - IDEMPOTENCY_TTL],
        )
        return cursor.fetchone() is not None


def idempotency_remember_refusal(*, user: User, key: str | None, ticket_id: UUID | str, error: DomainError) -> NoReturn:
    """Keep a refusal as the key's answer (or replay the answer kept first), then raise it."""
    if key and not idempotency_remember(user=user, key=key, ticket_id=ticket_id, answer=error_answer(error)):
        idempotency_replay(user_id=user.pk, key=key, ticket_id=ticket_id)
    raise error


def idempotency_purge() -> int:
    """Delete answers older than the 24 hours they are kept for; return how many."""
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=timezone.now() - IDEMPOTENCY_TTL).delete()
    return deleted
