from datetime import datetime
from uuid import UUID

from rest_framework import serializers

from fastticket.serializers import StrictSerializer
from reservations.models import ReservationStatus
from reservations.room import Place
from tickets.models import Ticket
from tickets.serializers import TicketSummarySerializer

_DATETIME = serializers.DateTimeField()


def reservation_representation(
    *, id: UUID | str, ticket: Ticket, status: str, reserved_at: datetime, cancelled_at: datetime | None
) -> dict:
    """Return a reservation as ReservationSerializer shows it, without building its fields.

    Every booking answer is rendered from this: a serializer copies its declared fields for each
    instance, which cost more than the rest of the answer (a test keeps the two equal).
    """
    return {
        "id": str(id),
        "ticket": {
            "id": str(ticket.pk),
            "title": ticket.title,
            "event_time": _DATETIME.to_representation(ticket.event_time),
        },
        "status": status,
        "reserved_at": _DATETIME.to_representation(reserved_at),
        "cancelled_at": None if cancelled_at is None else _DATETIME.to_representation(cancelled_at),
    }


# Printable ASCII (space to tilde), 1 to 64 characters.
IDEMPOTENCY_KEY_PATTERN = r"^[\x20-\x7e]{1,64}\Z"


class ReservationSerializer(serializers.Serializer):
    """A reservation; its fields describe it (schema, browsable API), reservation_representation renders it."""

    id = serializers.UUIDField(read_only=True)
    ticket = TicketSummarySerializer(read_only=True)
    status = serializers.ChoiceField(choices=ReservationStatus.choices, read_only=True)
    reserved_at = serializers.DateTimeField(read_only=True)
    cancelled_at = serializers.DateTimeField(read_only=True, allow_null=True)

    def to_representation(self, instance) -> dict:
        return reservation_representation(
            id=instance.pk,
            ticket=instance.ticket,
            status=instance.status,
            reserved_at=instance.reserved_at,
            cancelled_at=instance.cancelled_at,
        )


class ReservationUserSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    username = serializers.CharField(read_only=True)


class TicketReservationSerializer(ReservationSerializer):
    """A reservation as staff see it in a ticket's list: with its user."""

    user = ReservationUserSerializer(read_only=True)

    def to_representation(self, instance) -> dict:
        return {
            **super().to_representation(instance),
            "user": {"id": str(instance.user.pk), "username": instance.user.username},
        }


class EmptyBodySerializer(StrictSerializer):
    """A body that must carry no fields (reserve and cancel)."""


class IdempotencyKeySerializer(serializers.Serializer):
    """The optional Idempotency-Key header: 1-64 printable ASCII characters."""

    def get_fields(self):
        return {
            "Idempotency-Key": serializers.RegexField(
                IDEMPOTENCY_KEY_PATTERN,
                required=False,
                trim_whitespace=False,
                error_messages={
                    "invalid": "Idempotency-Key must be 1-64 printable ASCII characters.",
                    "blank": "Idempotency-Key must be 1-64 printable ASCII characters.",
                },
            )
        }


PLACE_STATUSES = ["waiting", "admitted", "booked", "expired", "sold_out", "closed"]


def place_representation(place: Place) -> dict:
    """Return a place in line as PlaceSerializer shows it (also inside a `not_admitted` answer)."""
    return {
        "ticket": place.ticket,
        "status": place.status,
        "position": place.position,
        "joined_at": _DATETIME.to_representation(place.joined_at),
        "admitted_until": None if place.admitted_until is None else _DATETIME.to_representation(place.admitted_until),
        "estimated_wait_seconds": place.estimated_wait_seconds,
        "poll_after_seconds": place.poll_after_seconds,
    }


class PlaceSerializer(serializers.Serializer):
    """The caller's place in a ticket's waiting room."""

    ticket = serializers.UUIDField(read_only=True)
    status = serializers.ChoiceField(choices=PLACE_STATUSES, read_only=True)
    position = serializers.IntegerField(
        read_only=True, allow_null=True, min_value=1, help_text="While waiting and the sale is open: 1 is next."
    )
    joined_at = serializers.DateTimeField(read_only=True)
    admitted_until = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="While admitted: book before this time."
    )
    estimated_wait_seconds = serializers.IntegerField(read_only=True, allow_null=True, min_value=0)
    poll_after_seconds = serializers.IntegerField(
        read_only=True, min_value=1, help_text="Ask again after this many seconds (it grows with the position)."
    )

    def to_representation(self, instance: Place) -> dict:
        return place_representation(instance)


class QueueStatsSerializer(serializers.Serializer):
    """How many places of a ticket's waiting room are in each state now (sold_out counts as waiting)."""

    waiting = serializers.IntegerField(read_only=True, min_value=0)
    admitted = serializers.IntegerField(read_only=True, min_value=0)
    booked = serializers.IntegerField(read_only=True, min_value=0)
    expired = serializers.IntegerField(read_only=True, min_value=0)


class RefusedSerializer(serializers.Serializer):
    """The `reserve` answers of one second refused with each counted code."""

    sold_out = serializers.IntegerField(read_only=True)
    busy = serializers.IntegerField(read_only=True)
    not_admitted = serializers.IntegerField(read_only=True)


class SalesSecondSerializer(serializers.Serializer):
    at = serializers.DateTimeField(read_only=True, help_text="The second, ISO 8601.")
    booked = serializers.IntegerField(
        read_only=True, help_text="Reservations made in this second (also those cancelled since)."
    )
    cancelled = serializers.IntegerField(read_only=True, help_text="Cancellations made in this second.")
    refused = RefusedSerializer(read_only=True, allow_null=True, help_text="Null while Redis is unreachable.")


class SalesSerializer(serializers.Serializer):
    """A ticket's sale as it goes, for staff dashboards."""

    ticket = serializers.UUIDField(read_only=True)
    quantity = serializers.IntegerField(read_only=True)
    issued_count = serializers.IntegerField(read_only=True)
    remaining = serializers.IntegerField(read_only=True)
    first_booking_at = serializers.DateTimeField(read_only=True, allow_null=True)
    sold_out_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="When the last seat was booked, while the ticket is sold out."
    )
    per_second = SalesSecondSerializer(
        many=True, read_only=True, help_text="Each of the last 300 seconds that saw anything, oldest first."
    )
    queue = QueueStatsSerializer(
        read_only=True, allow_null=True, help_text="The waiting room's counts; null when the ticket has none."
    )
