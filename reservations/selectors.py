"""Reservation reads: a user's own list and a ticket's list for staff."""

from uuid import UUID

from django.db.models import QuerySet

from accounts.models import User
from reservations.models import Reservation
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
