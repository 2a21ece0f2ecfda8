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


class QueueStatsSerializer(serializers.Serializer):
    """How many places of a waiting room are in each state now."""

    waiting = serializers.IntegerField(read_only=True)
    admitted = serializers.IntegerField(read_only=True)
    booked = serializers.IntegerField(read_only=True)
    expired = serializers.IntegerField(read_only=True)


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
