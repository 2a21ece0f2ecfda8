"""Requests and state snapshots shared by the booking tests."""

from datetime import datetime
from uuid import UUID

from django_redis import get_redis_connection

from reservations.models import Reservation
from tickets.models import Ticket


def reserve_url(ticket_id: UUID | str) -> str:
    return f"/api/v1/tickets/{ticket_id}/reserve/"


def reserve(client, ticket_id: UUID | str, *, key: str | None = None, **extra):
    """POST an empty reserve request, with an Idempotency-Key header when given."""
    if key is not None:
        extra["HTTP_IDEMPOTENCY_KEY"] = key
    return client.post(reserve_url(ticket_id), **extra)


def cancel(client, reservation_id: UUID | str, **extra):
    return client.post(f"/api/v1/reservations/{reservation_id}/cancel/", **extra)


def seats(ticket: Ticket) -> tuple[int, list[tuple]]:
    """Return the ticket's issued_count and its reservation rows, to prove that nothing changed."""
    issued = Ticket.objects.values_list("issued_count", flat=True).get(pk=ticket.pk)
    rows = list(
        Reservation.objects.filter(ticket=ticket)
        .order_by("id")
        .values_list("id", "user_id", "status", "reserved_at", "cancelled_at")
    )
    return issued, rows


def issued(ticket: Ticket) -> int:
    return Ticket.objects.values_list("issued_count", flat=True).get(pk=ticket.pk)


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def redis():
    return get_redis_connection("default")
