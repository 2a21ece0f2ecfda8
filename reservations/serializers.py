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
