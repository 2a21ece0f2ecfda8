"""The sale-day controls of the admin: each is one `ticket_update`, said in words before it runs.

A control turns a staff member's click (and a number, for some) into the changes to send to
tickets.services.ticket_update, the note for the history, and the sentence the confirmation page
shows. Pausing moves `sale_starts_at` into the future (API.md lets staff move it at any time), so
a forgotten pause ends by itself; resuming moves it to now.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.formats import date_format

from tickets.models import ADMIT_PER_MINUTE_RANGE, MAX_QUANTITY, Ticket

PAUSE_MINUTES_DEFAULT = 15


@dataclass(frozen=True)
class Plan:
    """What a control will do to a ticket."""

    changes: dict[str, Any]
    note: str
    says: str
    confirm: str
    rows: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Control:
    name: str
    title: str
    takes_value: bool
    plan: Callable[[Ticket, int | None, datetime], Plan]
    value_label: str = ""
    value_range: tuple[int, int] = (0, 0)


def _when(moment: datetime | None) -> str:
    return date_format(timezone.localtime(moment), "DATETIME_FORMAT") if moment else "none (open from creation)"


def _pause(ticket: Ticket, minutes: int | None, now: datetime) -> Plan:
    minutes = minutes or PAUSE_MINUTES_DEFAULT
    until = (now + timedelta(minutes=minutes)).replace(microsecond=0)
    if until >= ticket.event_time:
        raise ValidationError(f"The event starts at {_when(ticket.event_time)}: pause for fewer minutes.")
    return Plan(
        changes={"sale_starts_at": until},
        note=f"Paused the sale for {minutes} minutes",
        says=(
            f"Every booking of “{ticket.title}” is refused with sale_not_open until {_when(until)}, when the "
            "sale opens again by itself. Seats already sold stay sold. Resume earlier with “Resume the sale”."
        ),
        confirm=f"Yes, pause for {minutes} minutes",
        rows=[("sale starts at", _when(ticket.sale_starts_at), _when(until))],
    )


def _resume(ticket: Ticket, value: int | None, now: datetime) -> Plan:
    if ticket.sale_starts_at is None or ticket.sale_starts_at <= now:
        raise ValidationError("The sale is already open.")
    now = now.replace(microsecond=0)
    return Plan(
        changes={"sale_starts_at": now},
        note="Resumed the sale",
        says=f"“{ticket.title}” takes bookings again from now on, first come, first served.",
        confirm="Yes, open the sale now",
        rows=[("sale starts at", _when(ticket.sale_starts_at), f"{_when(now)} (now)")],
    )


def _waiting_room(on: bool) -> Callable[[Ticket, int | None, datetime], Plan]:
    def plan(ticket: Ticket, value: int | None, now: datetime) -> Plan:
        if ticket.waiting_room == on:
            raise ValidationError(f"The waiting room is already {'on' if on else 'off'}.")
        if on:
            says = (
                f"From now on, booking “{ticket.title}” needs an admission from its waiting room: buyers "
                f"join the line and are admitted {ticket.admit_per_minute:,} a minute, each for "
                f"{ticket.admission_seconds:,} seconds. Bookings without one are refused with not_admitted."
            )
        else:
            says = (
                f"The waiting room of “{ticket.title}” ends: its places and admissions are gone, and "
                "everyone may book directly, first come, first served."
            )
        return Plan(
            changes={"waiting_room": on},
            note=f"Turned the waiting room {'on' if on else 'off'}",
            says=says,
            confirm=f"Yes, turn the waiting room {'on' if on else 'off'}",
            rows=[("waiting room", "on" if ticket.waiting_room else "off", "on" if on else "off")],
        )

    return plan


def _admit_per_minute(ticket: Ticket, rate: int | None, now: datetime) -> Plan:
    if rate == ticket.admit_per_minute:
        raise ValidationError(f"The waiting room already admits {rate:,} a minute.")
    says = f"The waiting room admits {rate:,} places a minute from now on, instead of {ticket.admit_per_minute:,}."
    if not ticket.waiting_room:
        says += " It is off now: the rate applies once it is turned on."
    return Plan(
        changes={"admit_per_minute": rate},
        note="Changed the admission rate",
        says=says,
        confirm=f"Yes, admit {rate:,} a minute",
        rows=[("admit per minute", f"{ticket.admit_per_minute:,}", f"{rate:,}")],
    )


def _quantity(ticket: Ticket, quantity: int | None, now: datetime) -> Plan:
    if quantity == ticket.quantity:
        raise ValidationError(f"The quantity is already {quantity:,}.")
    if quantity < ticket.issued_count:
        raise ValidationError(f"Quantity cannot be below the {ticket.issued_count:,} seats already issued.")
    remaining = quantity - ticket.issued_count
    more = quantity > ticket.quantity
    return Plan(
        changes={"quantity": quantity},
        note="Changed the quantity",
        says=(
            f"“{ticket.title}” gets {quantity:,} seats in all: {remaining:,} left to sell "
            f"({'more' if more else 'fewer'} than the {ticket.remaining:,} left now). "
            + ("Buyers refused as sold out may book again." if more and ticket.remaining == 0 else "")
        ).strip(),
        confirm=f"Yes, make it {quantity:,} seats",
        rows=[
            ("quantity", f"{ticket.quantity:,}", f"{quantity:,}"),
            ("remaining", f"{ticket.remaining:,}", f"{remaining:,}"),
        ],
    )


CONTROLS = {
    control.name: control
    for control in (
        Control("pause", "Pause the sale", True, _pause, "minutes", (1, 7 * 24 * 60)),
        Control("resume", "Resume the sale", False, _resume),
        Control("waiting_room_on", "Turn the waiting room on", False, _waiting_room(True)),
        Control("waiting_room_off", "Turn the waiting room off", False, _waiting_room(False)),
        Control(
            "admit_per_minute",
            "Change the admission rate",
            True,
            _admit_per_minute,
            "per minute",
            ADMIT_PER_MINUTE_RANGE,
        ),
        Control("quantity", "Change the quantity", True, _quantity, "seats", (1, MAX_QUANTITY)),
    )
}
