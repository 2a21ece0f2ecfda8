"""Requests and state snapshots shared by the booking tests."""

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from uuid import UUID

import pytest
from django.conf import settings
from django.test.utils import override_settings
from django_redis import get_redis_connection

from fastticket import redis as ft_redis
from reservations.models import Reservation
from tests.servers import closed_port
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


@contextmanager
def redis_unreachable() -> Iterator[None]:
    """Point the cache and the booking lock at a dead Redis; back to the real one afterwards.

    The dead Redis is a port held closed for this run, so connections to it are refused at once.
    override_settings is process-wide: a live server's threads see the dead Redis too.
    """
    dead_redis = f"redis://127.0.0.1:{closed_port()}/15"
    caches = copy.deepcopy(settings.CACHES)
    for alias in caches:
        caches[alias]["LOCATION"] = dead_redis
    with override_settings(CACHES=caches):
        ft_redis.reset_breaker()
        try:
            for alias in caches:
                with pytest.raises(ft_redis.REDIS_ERRORS):  # control: Redis really is unreachable
                    get_redis_connection(alias).ping()
            yield
        finally:
            ft_redis.reset_breaker()
