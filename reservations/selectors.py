"""Reservation reads: a user's own list, a ticket's list for staff, and a ticket's sale as it goes."""

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from django.db.models import Count, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Trunc
from django.utils import timezone

from accounts.models import User
from fastticket.errors import Unavailable
from reservations.models import Reservation, ReservationStatus
from reservations.refusals import REFUSAL_CODES, refusals_per_second
from reservations.room import Place, place_of, room_ask, room_stats
from reservations.services import NoPlace, with_mirror
from tickets.models import Ticket


def reservation_list_for_user(*, user: User) -> QuerySet[Reservation]:
    """Return the user's reservations, newest first."""
    return Reservation.objects.filter(user=user).select_related("ticket").order_by("-reserved_at", "-id")


def reservation_list_for_ticket(*, ticket_id: UUID | str) -> QuerySet[Reservation]:
    """Return a ticket's reservations in booking order (oldest first); 404 for an unknown ticket."""
    Ticket.objects.only("id").get(pk=ticket_id)
    return (
        Reservation.objects.filter(ticket_id=ticket_id).select_related("ticket", "user").order_by("reserved_at", "id")
    )


def queue_place(*, user: User, ticket_id: UUID | str) -> Place:
    """Return the caller's place in the ticket's waiting room; 404 when they hold none.

    Reads no database table (the queue and the ticket's mirror are in Redis).
    """
    state = with_mirror(ticket_id, lambda: room_ask(ticket_id=ticket_id, user_id=user.pk), no_room=NoPlace)
    if state is None:
        raise NoPlace()
    return place_of(ticket_id=ticket_id, state=state)


def queue_stats(*, ticket: Ticket) -> dict[str, int] | None:
    """Return how many places of the ticket's waiting room are waiting, admitted, booked and expired.

    None when the ticket has no waiting room. Places answering `sold_out` count as waiting.
    """
    if not ticket.waiting_room:
        return None
    return with_mirror(ticket.pk, lambda: room_stats(ticket_id=ticket.pk), no_room=NoPlace)


# The sale as it goes (GET /api/v1/tickets/{id}/sales/) ---------------------------------------

SALES_WINDOW_SECONDS = 300


def ticket_sales(*, ticket_id: UUID | str, now: datetime | None = None) -> dict[str, Any]:
    """Return a ticket's sale as API.md's Sales shape describes it; 404 for an unknown ticket."""
    sales = ticket_sales_many(ticket_ids=[ticket_id], now=now)
    if not sales:
        raise Ticket.DoesNotExist("No such ticket.")
    return sales[0]


def ticket_sales_many(*, ticket_ids: Iterable[UUID | str], now: datetime | None = None) -> list[dict[str, Any]]:
    """Return the Sales of each existing ticket among `ticket_ids`, in event order.

    Two queries whatever the number of reservations: the ticket rows with their first booking and
    last confirmed booking (one probe each of the (ticket, reserved_at) index), and the bookings and
    cancellations of the window counted per second (range scans of that index and of the partial
    (ticket, cancelled_at) index). The refusals take one Redis round trip per ticket.
    """
    now = now or timezone.now()
    until = int(now.timestamp())
    since = until - SALES_WINDOW_SECONDS + 1
    window = (datetime.fromtimestamp(since, UTC), datetime.fromtimestamp(until + 1, UTC))
    of_ticket = Reservation.objects.filter(ticket=OuterRef("pk"))
    tickets = list(
        Ticket.objects.filter(pk__in=list(ticket_ids))
        .annotate(
            first_booking_at=Subquery(of_ticket.order_by("reserved_at").values("reserved_at")[:1]),
            last_booking_at=Subquery(
                of_ticket.filter(status=ReservationStatus.CONFIRMED).order_by("-reserved_at").values("reserved_at")[:1]
            ),
        )
        .order_by("event_time", "id")
    )
    counts = _counts_per_second(ticket_ids=[t.pk for t in tickets], window=window)
    return [_sales(ticket, counts.get(ticket.pk, {}), since=since, until=until) for ticket in tickets]


def _counts_per_second(*, ticket_ids: list[UUID], window: tuple[datetime, datetime]) -> dict[UUID, dict[int, dict]]:
    """Count bookings and cancellations per ticket and second of the window, in one query."""
    if not ticket_ids:
        return {}

    def per_second(field: str, kind: str) -> QuerySet:
        in_window = {f"{field}__gte": window[0], f"{field}__lt": window[1]}
        return (
            Reservation.objects.filter(ticket_id__in=ticket_ids, **in_window)
            .annotate(at=Trunc(field, "second", tzinfo=UTC), kind=Value(kind))
            .values("ticket_id", "at", "kind")
            .annotate(n=Count("*"))
            .order_by()
        )

    counts: dict[UUID, dict[int, dict]] = {}
    for row in per_second("reserved_at", "booked").union(per_second("cancelled_at", "cancelled"), all=True):
        second = counts.setdefault(row["ticket_id"], {}).setdefault(int(row["at"].timestamp()), {})
        second[row["kind"]] = row["n"]
    return counts


def queue_counts(ticket: Ticket) -> dict[str, int] | None:
    """The waiting room's counts for a dashboard: None while Redis is unreachable, like `refused`."""
    try:
        return queue_stats(ticket=ticket)
    except Unavailable:
        return None


def _sales(ticket: Ticket, counts: dict[int, dict], *, since: int, until: int) -> dict[str, Any]:
    refused = refusals_per_second(ticket_id=ticket.pk, since=since, until=until)
    seconds = sorted(set(counts) | set(refused or ()))
    no_refusals = dict.fromkeys(REFUSAL_CODES, 0)
    return {
        "ticket": ticket.pk,
        "quantity": ticket.quantity,
        "issued_count": ticket.issued_count,
        "remaining": ticket.remaining,
        "first_booking_at": ticket.first_booking_at,
        "sold_out_at": ticket.last_booking_at if ticket.sold_out else None,
        "per_second": [
            {
                "at": datetime.fromtimestamp(second, UTC),
                "booked": counts.get(second, {}).get("booked", 0),
                "cancelled": counts.get(second, {}).get("cancelled", 0),
                "refused": None if refused is None else refused.get(second, no_refusals),
            }
            for second in seconds
        ],
        "queue": queue_counts(ticket),
    }
