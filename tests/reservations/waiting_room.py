"""Waiting-room test helpers: tickets with a waiting room, the queue's requests, what a place shows.

Tickets are made by the staff service (tickets.services.ticket_create), so the ticket's mirror in
Redis is written on commit as in production; the tests that use them run on `transaction=True`
databases, where commits happen.
"""

import time
from datetime import datetime, timedelta
from uuid import UUID

from django.db.models import F
from django.utils import timezone
from rest_framework.test import APIClient

from tests.factories import access_token, make_user
from tests.reservations.helpers import parse_time
from tests.servers import wait_until
from tickets.models import Ticket
from tickets.sale_state import sale_state_rebuild
from tickets.services import ticket_create

PLACE_FIELDS = {
    "ticket",
    "status",
    "position",
    "joined_at",
    "admitted_until",
    "estimated_wait_seconds",
    "poll_after_seconds",
}
STATS_FIELDS = {"waiting", "admitted", "booked", "expired"}


def room_ticket(
    *,
    quantity: int = 10,
    admit_per_minute: int = 600,
    admission_seconds: int = 30,
    sale_starts_at: datetime | None = None,
    event_time: datetime | None = None,
    waiting_room: bool = True,
    title: str = "Gala",
) -> Ticket:
    """Create a ticket (with a waiting room unless told otherwise) as staff would."""
    return ticket_create(
        title=title,
        quantity=quantity,
        event_time=event_time or timezone.now() + timedelta(days=30),
        sale_starts_at=sale_starts_at,
        waiting_room=waiting_room,
        admit_per_minute=admit_per_minute,
        admission_seconds=admission_seconds,
    )


def force_ticket(ticket_id: UUID | str, **fields) -> None:
    """Put a ticket in a state the API refuses to set (a past event), as a new version of its row.

    The mirror is rebuilt from the row, as the services do after their writes.
    """
    Ticket.objects.filter(pk=ticket_id).update(sale_version=F("sale_version") + 1, **fields)
    sale_state_rebuild(ticket_id=ticket_id)


def queue_url(ticket_id: UUID | str) -> str:
    return f"/api/v1/tickets/{ticket_id}/queue/"


def stats_url(ticket_id: UUID | str) -> str:
    return f"/api/v1/tickets/{ticket_id}/queue/stats/"


def ticket_url(ticket_id: UUID | str) -> str:
    return f"/api/v1/tickets/{ticket_id}/"


def join(client, ticket_id: UUID | str, **extra):
    return client.post(queue_url(ticket_id), **extra)


def ask(client, ticket_id: UUID | str):
    return client.get(queue_url(ticket_id))


def leave(client, ticket_id: UUID | str):
    return client.delete(queue_url(ticket_id))


def place_of(client, ticket_id: UUID | str) -> dict:
    """Ask for the caller's place and return it (it must exist)."""
    response = ask(client, ticket_id)
    assert response.status_code == 200, response.content
    return response.json()


def admitted_soon(client, ticket_id: UUID | str) -> dict:
    """Return the caller's place once it is admitted: API.md allows 2 seconds after its turn."""
    return wait_until(
        lambda: (place := place_of(client, ticket_id))["status"] == "admitted" and place,
        timeout=2.5,
        what="the place's admission",
    )


def stats(staff_client, ticket_id: UUID | str) -> dict:
    response = staff_client.get(stats_url(ticket_id))
    assert response.status_code == 200, response.content
    assert set(response.json()) == STATS_FIELDS
    return response.json()


def settles(staff_client, ticket_id: UUID | str, expected: dict) -> None:
    """Assert the queue's counts reach `expected` within API.md's 2 seconds, and stay there a moment."""
    wait_until(lambda: stats(staff_client, ticket_id) == expected, timeout=2.5, what=f"the counts {expected}")
    time.sleep(0.1)
    assert stats(staff_client, ticket_id) == expected


def user_client(username: str) -> APIClient:
    """A new user and an API client authenticated as them (the user is `client.user`)."""
    user = make_user(username)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token(user)}")
    client.user = user
    return client


def user_clients(n: int, prefix: str) -> list[APIClient]:
    return [user_client(f"{prefix}{i}") for i in range(n)]


def admitted_at(place: dict, admission_seconds: int) -> datetime:
    """When a place was admitted: its admission ends admission_seconds later."""
    return parse_time(place["admitted_until"]) - timedelta(seconds=admission_seconds)


def assert_place(place: dict, *, ticket_id: UUID | str, status: str, sale_open: bool = True) -> None:
    """Assert API.md's Place shape and which fields are set for this status."""
    assert set(place) == PLACE_FIELDS, place
    assert place["ticket"] == str(ticket_id)
    assert place["status"] == status, place
    parse_time(place["joined_at"])
    assert isinstance(place["poll_after_seconds"], int), place
    assert place["poll_after_seconds"] >= 1, place
    if status == "waiting" and sale_open:
        assert isinstance(place["position"], int), place
        assert place["position"] >= 1, place
        assert isinstance(place["estimated_wait_seconds"], int), place
        assert place["estimated_wait_seconds"] >= 0, place
    else:
        assert place["position"] is None, place
        assert place["estimated_wait_seconds"] is None, place
    if status == "admitted":
        parse_time(place["admitted_until"])
    else:
        assert place["admitted_until"] is None, place


def assert_paced(times: list[datetime], *, admit_per_minute: int) -> None:
    """Assert API.md's pace: in any span of t seconds at most 1 + t * admit_per_minute / 60 admissions.

    Admission times come from admitted_until, which has millisecond precision: 2 ms of slack.
    """
    ordered = sorted(times)
    for first in range(len(ordered)):
        for last in range(first + 1, len(ordered)):
            span = (ordered[last] - ordered[first]).total_seconds() + 0.002
            admitted = last - first + 1
            assert admitted <= 1 + span * admit_per_minute / 60, (
                f"{admitted} admissions within {span:.3f} s at {admit_per_minute} a minute: {ordered[first : last + 1]}"
            )
