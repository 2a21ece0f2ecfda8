"""Booking API: reserve a seat, list and cancel one's reservations, staff list and sales per ticket."""

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from fastticket.permissions import IsStaff
from fastticket.schema import errors
from fastticket.throttling import BookingRateThrottle, UserRateThrottle
from reservations import selectors, services
from reservations.filters import ReservationFilter
from reservations.models import Reservation, ReservationStatus
from reservations.serializers import (
    EmptyBodySerializer,
    IdempotencyKeySerializer,
    ReservationSerializer,
    SalesSerializer,
    TicketReservationSerializer,
)

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    # Printable ASCII; HTTP strips a header value's outer spaces, so none can be sent there.
    {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[!-~]([ -~]{0,62}[!-~])?$"},
    OpenApiParameter.HEADER,
    required=False,
    description=(
        "1-64 printable ASCII characters. The first answer that is not a 429 or 503 is kept for 24 "
        "hours and replayed, byte for byte, with `Idempotent-Replayed: true`."
    ),
)


class ReserveView(APIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = [UserRateThrottle, BookingRateThrottle]

    @extend_schema(
        tags=["booking"],
        summary="Book one seat of a ticket",
        operation_id="tickets_reserve",
        request=None,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: ReservationSerializer, **errors(400, 401, 404, 409, 413, 422, 429, 503)},
    )
    def post(self, request: Request, ticket_id) -> Response:
        _refuse_body_fields(request)
        reservation = services.reservation_create(
            user=request.user, ticket_id=ticket_id, idempotency_key=_idempotency_key(request)
        )
        return Response(ReservationSerializer(reservation).data, status=status.HTTP_201_CREATED)


def _refuse_body_fields(request: Request) -> None:
    """Refuse a body that carries fields (400); an empty body, the usual case, is not parsed."""
    if request.META.get("CONTENT_LENGTH") not in (None, "", "0"):
        EmptyBodySerializer(data=request.data).is_valid(raise_exception=True)


def _idempotency_key(request: Request) -> str | None:
    """Return the validated Idempotency-Key header, or None when there is none."""
    value = request.META.get("HTTP_IDEMPOTENCY_KEY")
    if value is None:
        return None
    header = IdempotencyKeySerializer(data={"Idempotency-Key": value})
    header.is_valid(raise_exception=True)
    return header.validated_data["Idempotency-Key"]


# django-filter reads an empty value as no filter at all.
STATUS = OpenApiParameter(
    "status",
    str,
    enum=[*ReservationStatus.values, ""],
    description="Keep the reservations in this status; empty or absent: all.",
)


@extend_schema_view(
    list=extend_schema(
        summary="List my reservations, newest first",
        parameters=[STATUS],
        responses={200: ReservationSerializer(many=True), **errors(400, 401, 404, 429)},
    ),
    retrieve=extend_schema(
        summary="Show one of my reservations", responses={200: ReservationSerializer, **errors(401, 404, 429)}
    ),
)
@extend_schema(tags=["booking"])
class ReservationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = Reservation.objects.none()  # the schema's model; requests use get_queryset
    serializer_class = ReservationSerializer
    permission_classes = [IsAuthenticated]
    filterset_class = ReservationFilter
    lookup_value_converter = "uuid"

    def get_queryset(self):
        return selectors.reservation_list_for_user(user=self.request.user)

    @extend_schema(
        summary="Cancel my reservation; its seat returns to stock",
        request=None,
        responses={200: ReservationSerializer, **errors(400, 401, 404, 409, 413, 429, 503)},
    )
    @action(detail=True, methods=["post"], throttle_classes=[UserRateThrottle, BookingRateThrottle])
    def cancel(self, request: Request, pk=None) -> Response:
        _refuse_body_fields(request)
        reservation = services.reservation_cancel(user=request.user, reservation_id=pk)
        return Response(ReservationSerializer(reservation).data)


@extend_schema_view(
    list=extend_schema(
        tags=["tickets"],
        summary="List a ticket's reservations in booking order (staff)",
        operation_id="tickets_reservations_list",
        responses={200: TicketReservationSerializer(many=True), **errors(400, 401, 403, 404, 429)},
    ),
)
class TicketReservationViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    queryset = Reservation.objects.none()  # the schema's model; requests use get_queryset
    serializer_class = TicketReservationSerializer
    permission_classes = [IsStaff]

    def get_queryset(self):
        return selectors.reservation_list_for_ticket(ticket_id=self.kwargs["ticket_id"])


class TicketSalesView(APIView):
    permission_classes = [IsStaff]

    @extend_schema(
        tags=["tickets"],
        summary="Show a ticket's sale as it goes: counts, per-second activity, waiting room (staff)",
        operation_id="tickets_sales",
        responses={200: SalesSerializer, **errors(401, 403, 404, 429)},
    )
    def get(self, request: Request, ticket_id) -> Response:
        return Response(SalesSerializer(selectors.ticket_sales(ticket_id=ticket_id)).data)
