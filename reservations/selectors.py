"""Reservation reads: a user's own list and a ticket's list for staff."""

from uuid import UUID

from django.db.models import QuerySet

from accounts.models import User
from reservations.models import Reservation
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
