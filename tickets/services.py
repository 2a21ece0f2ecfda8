"""Ticket actions for staff: create, update, delete. The API and the admin both call these.

Given the staff member (`by`), each action also writes the admin's history entry (LogEntry) in
its own transaction, so the history holds exactly the changes that were committed, with the values
read under the ticket's row lock.
"""

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import ProtectedError
from django.utils import timezone

from accounts.models import User
from fastticket.db import busy_on_lock_timeout
from fastticket.errors import TicketHasReservations
from tickets.locks import ticket_lock
from tickets.models import Ticket
from tickets.sale_state import room_end, sale_state_forget, sale_state_write

EDITABLE_FIELDS = (
    "title",
    "quantity",
    "event_time",
    "sale_starts_at",
    "waiting_room",
    "admit_per_minute",
    "admission_seconds",
)


def ticket_validate(
    *,
    quantity: int,
    event_time: datetime,
    sale_starts_at: datetime | None,
    issued_count: int = 0,
    event_time_changed: bool = True,
) -> None:
    """Check the rules of a ticket as it would be stored; raise field errors for each broken one.

    `quantity` never below `issued_count`; `event_time` in the future when set or changed;
    `sale_starts_at`, when given, before `event_time`.
    """
    errors: dict[str, list[str]] = {}
    if quantity < issued_count:
        errors["quantity"] = [f"Quantity cannot be below the {issued_count} seats already issued."]
    if event_time_changed and event_time <= timezone.now():
        errors["event_time"] = ["The event time must be in the future."]
    if sale_starts_at is not None and sale_starts_at >= event_time:
        errors["sale_starts_at"] = ["The sale must start before the event time."]
    if errors:
        raise ValidationError(errors)


def ticket_create(
    *,
    title: str,
    quantity: int,
    event_time: datetime,
    sale_starts_at: datetime | None = None,
    waiting_room: bool = False,
    admit_per_minute: int = 600,
    admission_seconds: int = 300,
    by: User | None = None,
) -> Ticket:
    """Create a ticket with nothing issued yet."""
    ticket_validate(quantity=quantity, event_time=event_time, sale_starts_at=sale_starts_at)
    with transaction.atomic():
        ticket = Ticket.objects.create(
            title=title,
            quantity=quantity,
            event_time=event_time,
            sale_starts_at=sale_starts_at,
            waiting_room=waiting_room,
            admit_per_minute=admit_per_minute,
            admission_seconds=admission_seconds,
            queue_generation=1 if waiting_room else 0,
        )
        _log(by, ticket, ADDITION, [{"added": {}}])
        transaction.on_commit(lambda: sale_state_write(ticket=ticket))
    return ticket


def ticket_update(*, ticket_id: UUID | str, by: User | None = None, note: str = "", **changes: Any) -> Ticket:
    """Apply a partial update under the ticket's locks (Redis, then the row: bookings' order).

    With `by`, the history entry names each changed field with its old and new value, after
    `note` (what the staff member meant, e.g. "Paused the sale") when there is one.

    The row lock makes the `quantity >= issued_count` check hold against a booking that commits
    between the staff member's read and this write. After commit the ticket's mirror in Redis is
    rewritten (a new sale_version), so the booking line and the waiting room see the change; turning
    the waiting room on starts a new queue, turning it off ends the queue (its places and
    admissions are gone) and everyone may book directly.
    """
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError({name: ["This field cannot be changed."] for name in sorted(unknown)})
    with ticket_lock(ticket_id), transaction.atomic(), busy_on_lock_timeout():
        ticket = Ticket.objects.select_for_update().get(pk=ticket_id)
        event_time = changes.get("event_time", ticket.event_time)
        ticket_validate(
            quantity=changes.get("quantity", ticket.quantity),
            event_time=event_time,
            sale_starts_at=changes.get("sale_starts_at", ticket.sale_starts_at),
            issued_count=ticket.issued_count,
            event_time_changed=event_time != ticket.event_time,
        )
        changed = [(name, getattr(ticket, name), value) for name, value in changes.items()]
        ended_queue = ticket.queue_generation if ticket.waiting_room else None
        for name, value in changes.items():
            setattr(ticket, name, value)
        if ticket.waiting_room and ended_queue is None:
            ticket.queue_generation += 1
        ticket.sale_version += 1
        ticket.save(update_fields=[*changes, "queue_generation", "sale_version", "updated_at"])
        message = _change_message(note, changed)
        if message:
            _log(by, ticket, CHANGE, message)
        transaction.on_commit(lambda: sale_state_write(ticket=ticket))
        if ended_queue is not None and not ticket.waiting_room:
            transaction.on_commit(lambda: room_end(ticket_id=ticket.pk, generation=ended_queue))
    return ticket


def ticket_delete(*, ticket_id: UUID | str, by: User | None = None) -> None:
    """Delete a ticket that has never had a reservation, active or cancelled."""
    with ticket_lock(ticket_id), transaction.atomic(), busy_on_lock_timeout():
        ticket = Ticket.objects.select_for_update().get(pk=ticket_id)
        if ticket.reservations.exists():
            raise TicketHasReservations()
        _log(by, ticket, DELETION, "")
        try:
            ticket.delete()
        except ProtectedError as exc:
            # The PROTECT foreign key is the net for a booking that slipped in regardless.
            raise TicketHasReservations() from exc
        transaction.on_commit(lambda: sale_state_forget(ticket_id=ticket_id))
        if ticket.waiting_room:
            transaction.on_commit(lambda: room_end(ticket_id=ticket_id, generation=ticket.queue_generation))


def _log(by: User | None, ticket: Ticket, action_flag: int, message: str | list) -> None:
    """Write the admin's history entry of a staff action on the ticket (none without `by`)."""
    if by is not None:
        LogEntry.objects.log_actions(
            user_id=by.pk, queryset=[ticket], action_flag=action_flag, change_message=message, single_object=True
        )


def _change_message(note: str, changed: list[tuple[str, Any, Any]]) -> str:
    """Describe a change for the history ("Paused the sale: sale starts at none → 2026-..."); "" for none."""
    parts = [
        f"{Ticket._meta.get_field(name).verbose_name} {_shown(old)} → {_shown(new)}"
        for name, old, new in changed
        if old != new
    ]
    if not parts:
        return f"{note}: nothing changed." if note else ""
    return f"{note}: {'; '.join(parts)}." if note else f"Changed {'; '.join(parts)}."


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, datetime):
        # Stored text outlives the admin's time zone setting: name the zone.
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
