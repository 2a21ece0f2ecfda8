from rest_framework import serializers

from fastticket.serializers import StrictModelSerializer
from tickets.models import ADMISSION_SECONDS_RANGE, ADMIT_PER_MINUTE_RANGE, MAX_QUANTITY, Ticket


class TicketSerializer(StrictModelSerializer):
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY)
    remaining = serializers.IntegerField(read_only=True)
    sold_out = serializers.BooleanField(read_only=True)
    sale_starts_at = serializers.DateTimeField(required=False, allow_null=True)
    waiting_room = serializers.BooleanField(required=False, default=False)
    admit_per_minute = serializers.IntegerField(
        required=False, default=600, min_value=ADMIT_PER_MINUTE_RANGE[0], max_value=ADMIT_PER_MINUTE_RANGE[1]
    )
    admission_seconds = serializers.IntegerField(
        required=False, default=300, min_value=ADMISSION_SECONDS_RANGE[0], max_value=ADMISSION_SECONDS_RANGE[1]
    )

    class Meta:
        model = Ticket
        fields = [
            "id",
            "title",
            "quantity",
            "issued_count",
            "remaining",
            "sold_out",
            "event_time",
            "sale_starts_at",
            "waiting_room",
            "admit_per_minute",
            "admission_seconds",
            "created_at",
        ]
        read_only_fields = ["id", "issued_count", "remaining", "sold_out", "created_at"]
        extra_kwargs = {"title": {"min_length": 1, "max_length": 200}}


class TicketSummarySerializer(serializers.Serializer):
    """The ticket as a reservation shows it.

    A plain Serializer: a ModelSerializer rebuilds its fields from the model on every use, which
    cost a tenth of a millisecond per booking answer.
    """

    id = serializers.UUIDField(read_only=True)
    title = serializers.CharField(read_only=True)
    event_time = serializers.DateTimeField(read_only=True)
