"""Ticket reads for the catalogue."""

from django.db.models import QuerySet

from tickets.models import Ticket


def ticket_list() -> QuerySet[Ticket]:
    """Return tickets in listing order (event time, then id); `?search=` is TicketFilter's."""
    return Ticket.objects.order_by("event_time", "id")
