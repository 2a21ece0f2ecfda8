"""Booking API: reserve, list and cancel reservations, staff lists and sales per ticket, the waiting room."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import BearerJWTAuthentication
from fastticket.errors import NoWaitingRoom
from fastticket.permissions import IsStaff
from fastticket.schema import errors
from fastticket.throttling import BookingRateThrottle, UserRateThrottle
from reservations import selectors, services
from reservations.filters import ReservationFilter
from reservations.models import Reservation, ReservationStatus
from reservations.serializers import (
    EmptyBodySerializer,
    IdempotencyKeySerializer,
    PlaceSerializer,
    QueueStatsSerializer,
    ReservationSerializer,
    SalesSerializer,
    TicketReservationSerializer,
)
from tickets.models import Ticket

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
    # Booking's first statement reads the caller's account (reservations.batch.booking_read), so a
    # bearer token of a user this process has not seen costs no user SELECT of its own.
    authentication_classes = [BearerJWTAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]
    throttle_classes = [UserRateThrottle, BookingRateThrottle]

    @extend_schema(
        tags=["booking"],
        summary="Book one seat of a ticket",
        operation_id="tickets_reserve",
        # BearerJWTAuthentication takes the same bearer tokens as every other endpoint.
        auth=[{"jwtAuth": []}],
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


class QueueView(APIView):
    """The caller's place in a ticket's waiting room: join, ask, give up."""

    permission_classes = [IsAuthenticated]
    throttle_classes = [UserRateThrottle]

    def get_authenticators(self):
        # A join reads the caller's account in its own statement (services.queue_join), as a
        # booking does: a bearer token of a user this process has not seen costs no user SELECT.
        # Asking and giving up have no statement of their own to fold it into: they load the user.
        if getattr(self.request, "method", None) == "POST":
            return [BearerJWTAuthentication(), SessionAuthentication()]
        return super().get_authenticators()

    @extend_schema(
        tags=["waiting room"],
        summary="Join a ticket's waiting room (or get back the place you hold)",
        operation_id="tickets_queue_join",
        # BearerJWTAuthentication takes the same bearer tokens as every other endpoint.
        auth=[{"jwtAuth": []}],
        request=None,
        responses={
            201: OpenApiResponse(PlaceSerializer, description="Joined: a new place at the back."),
            200: OpenApiResponse(PlaceSerializer, description="The place you hold: joining twice moves no one."),
            **errors(400, 401, 404, 409, 413, 429, 503),
        },
    )
    def post(self, request: Request, ticket_id) -> Response:
        _refuse_body_fields(request)
        place, created = services.queue_join(user=request.user, ticket_id=ticket_id)
        return Response(PlaceSerializer(place).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(
        tags=["waiting room"],
        summary="Show your place in a ticket's waiting room",
        operation_id="tickets_queue_show",
        responses={200: PlaceSerializer, **errors(401, 404, 429, 503)},
    )
    def get(self, request: Request, ticket_id) -> Response:
        return Response(PlaceSerializer(selectors.queue_place(user=request.user, ticket_id=ticket_id)).data)

    @extend_schema(
        tags=["waiting room"],
        summary="Give up your place in a ticket's waiting room",
        operation_id="tickets_queue_leave",
        request=None,
        responses={204: OpenApiResponse(description="Given up."), **errors(401, 404, 429, 503)},
    )
    def delete(self, request: Request, ticket_id) -> Response:
        services.queue_leave(user=request.user, ticket_id=ticket_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class QueueStatsView(APIView):
    """How many places of a ticket's waiting room are in each state (staff)."""

    permission_classes = [IsStaff]

    @extend_schema(
        tags=["waiting room"],
        summary="Count the places of a ticket's waiting room by state (staff)",
        operation_id="tickets_queue_stats",
        responses={200: QueueStatsSerializer, **errors(401, 403, 404, 409, 429, 503)},
    )
    def get(self, request: Request, ticket_id) -> Response:
        stats = selectors.queue_stats(ticket=Ticket.objects.only("id", "waiting_room").get(pk=ticket_id))
        if stats is None:
            raise NoWaitingRoom()
        return Response(QueueStatsSerializer(stats).data)


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
