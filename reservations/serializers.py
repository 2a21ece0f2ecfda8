from django.contrib.auth import get_user_model
from rest_framework import serializers

from fastticket.serializers import StrictSerializer
from reservations.models import Reservation
from tickets.serializers import TicketSummarySerializer

# Printable ASCII (space to tilde), 1 to 64 characters.
IDEMPOTENCY_KEY_PATTERN = r"^[\x20-\x7e]{1,64}\Z"


class ReservationSerializer(serializers.ModelSerializer):
    ticket = TicketSummarySerializer(read_only=True)

    class Meta:
        model = Reservation
        fields = ["id", "ticket", "status", "reserved_at", "cancelled_at"]
        read_only_fields = fields


class ReservationUserSerializer(serializers.ModelSerializer):
    class Meta:
        model = get_user_model()
        fields = ["id", "username"]
        read_only_fields = fields


class TicketReservationSerializer(ReservationSerializer):
    """A reservation as staff see it in a ticket's list: with its user."""

    user = ReservationUserSerializer(read_only=True)

    class Meta(ReservationSerializer.Meta):
        fields = [*ReservationSerializer.Meta.fields, "user"]
        read_only_fields = fields


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
