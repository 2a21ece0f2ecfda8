"""OpenAPI helpers: the documented error responses of API.md's Errors table."""

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import OpenApiResponse

from fastticket.serializers import (
    DomainErrorSerializer,
    ErrorSerializer,
    UnauthorizedSerializer,
    ValidationErrorSerializer,
)

# An operation anyone may call: the bearer token or session is optional (the empty requirement).
OPTIONAL_AUTH = [{"jwtAuth": []}, {}]

_ERRORS = {
    400: OpenApiResponse(ValidationErrorSerializer, description='Invalid input: `{"field": ["message"]}`.'),
    401: OpenApiResponse(UnauthorizedSerializer, description="No, invalid or expired credentials."),
    403: OpenApiResponse(ErrorSerializer, description="Authenticated but not allowed."),
    404: OpenApiResponse(ErrorSerializer, description="Not found."),
    409: OpenApiResponse(DomainErrorSerializer, description="A business rule stops the action."),
    413: OpenApiResponse(ErrorSerializer, description="The request body is too large."),
    422: OpenApiResponse(ErrorSerializer, description="Idempotency-Key reused for a different request."),
    429: OpenApiResponse(ErrorSerializer, description="Throttled; see `Retry-After`."),
    503: OpenApiResponse(DomainErrorSerializer, description="Busy or a dependency is down; see `Retry-After`."),
}


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """Return the documented error responses for these status codes."""
    return {code: _ERRORS[code] for code in codes}


class StrictSerializerExtension(OpenApiSerializerExtension):
    """Say in the schema what StrictSerializer does: a request body with an unknown field is a 400."""

    target_class = "fastticket.serializers.StrictSerializer"
    match_subclasses = True
    priority = 1  # above drf-spectacular's own simplejwt extensions (login, refresh)

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if direction == "request":
            schema["additionalProperties"] = False
        return schema
