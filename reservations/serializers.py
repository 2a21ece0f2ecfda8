from rest_framework import serializers

from fastticket.serializers import StrictSerializer
from reservations.models import ReservationStatus
from tickets.serializers import TicketSummarySerializer

# Printable ASCII (space to tilde), 1 to 64 characters.
IDEMPOTENCY_KEY_PATTERN = r"^[\x20-\x7e]{1,64}\Z"


class ReservationSerializer(serializers.Serializer):
    """A reservation (plain Serializer, like TicketSummarySerializer: it renders every booking)."""

    id = serializers.UUIDField(read_only=True)
    ticket = TicketSummarySerializer(read_only=True)
    status = serializers.ChoiceField(choices=ReservationStatus.choices, read_only=True)
    reserved_at = serializers.DateTimeField(read_only=True)
    cancelled_at = serializers.DateTimeField(read_only=True, allow_null=True)


class ReservationUserSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    username = serializers.CharField(read_only=True)


class TicketReservationSerializer(ReservationSerializer):
    """A reservation as staff see it in a ticket's list: with its user."""

    user = ReservationUserSerializer(read_only=True)


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
