"""Tickets API: the public catalogue and staff writes."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, viewsets

from fastticket.permissions import IsStaffOrReadOnly
from fastticket.schema import OPTIONAL_AUTH, errors
from tickets import selectors, services
from tickets.filters import TicketFilter
from tickets.serializers import TicketSerializer

WRITE_ERRORS = errors(400, 401, 403, 413, 429)
# PostgreSQL text cannot hold NUL, so a search containing one is a 400.
SEARCH = OpenApiParameter(
    "search",
    {"type": "string", "pattern": "^[^\\u0000]*$"},
    description="Keep tickets whose title contains this, ignoring case.",
)


@extend_schema_view(
    list=extend_schema(
        summary="List tickets by event time",
        parameters=[SEARCH],
        responses={200: TicketSerializer(many=True), **errors(400, 404, 429)},
        auth=OPTIONAL_AUTH,
    ),
    retrieve=extend_schema(
        summary="Show one ticket", responses={200: TicketSerializer, **errors(404, 429)}, auth=OPTIONAL_AUTH
    ),
    create=extend_schema(summary="Create a ticket (staff)", responses={201: TicketSerializer, **WRITE_ERRORS}),
    update=extend_schema(
        summary="Replace a ticket (staff)", responses={200: TicketSerializer, **WRITE_ERRORS, **errors(404, 503)}
    ),
    partial_update=extend_schema(
        summary="Change a ticket (staff)", responses={200: TicketSerializer, **WRITE_ERRORS, **errors(404, 503)}
    ),
    destroy=extend_schema(
        summary="Delete a ticket without reservations (staff)",
        responses={204: OpenApiResponse(description="Deleted."), **errors(401, 403, 404, 409, 429, 503)},
    ),
)
@extend_schema(tags=["tickets"])
class TicketViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = TicketSerializer
    permission_classes = [IsStaffOrReadOnly]
    filterset_class = TicketFilter
    lookup_value_converter = "uuid"

    def get_queryset(self):
        return selectors.ticket_list()

    def perform_create(self, serializer: TicketSerializer) -> None:
        serializer.instance = services.ticket_create(**serializer.validated_data, by=self.request.user)

    def perform_update(self, serializer: TicketSerializer) -> None:
        serializer.instance = services.ticket_update(
            ticket_id=serializer.instance.pk, by=self.request.user, **serializer.validated_data
        )

    def perform_destroy(self, instance) -> None:
        services.ticket_delete(ticket_id=instance.pk, by=self.request.user)
