"""Ticket reads for the catalogue."""

from django.db.models import QuerySet

from tickets.models import Ticket


def ticket_list(*, search: str | None = None) -> QuerySet[Ticket]:
    """Return tickets in listing order (event time, then id), optionally by title substring."""
    tickets = Ticket.objects.order_by("event_time", "id")
    if search:
        tickets = tickets.filter(title__icontains=search)
    return tickets
