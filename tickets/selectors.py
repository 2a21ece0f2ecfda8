"""Ticket reads for the catalogue and the admin's sale-day overview."""

from datetime import datetime, timedelta

from django.db.models import Q, QuerySet

from tickets.models import Ticket


def ticket_list() -> QuerySet[Ticket]:
    """Return tickets in listing order (event time, then id); `?search=` is TicketFilter's."""
    return Ticket.objects.order_by("event_time", "id")


def ticket_list_live(*, now: datetime, opening_within: timedelta) -> QuerySet[Ticket]:
    """Return the tickets on sale now (sold out too) and those whose sale opens within `opening_within`.

    The sale is open from `sale_starts_at` (or creation) until `event_time`. By event time.
    """
    open_now = (Q(sale_starts_at__isnull=True) | Q(sale_starts_at__lte=now)) & Q(event_time__gt=now)
    opening = Q(sale_starts_at__gt=now, sale_starts_at__lte=now + opening_within)
    return Ticket.objects.filter(open_now | opening).order_by("event_time", "id")
