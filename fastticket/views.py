"""The landing page at /, the API's index at /api/v1/, and ReDoc's bundle without its one outside request."""

from functools import cache

from django.conf import settings
from django.contrib.staticfiles import finders
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from fastticket.schema import errors
from fastticket.serializers import ApiIndexSerializer

# ReDoc's standalone bundle shows the Redocly logo from a CDN in its menu footer: the docs must
# make no request that leaves the machine, so that image is an empty inline SVG instead.
REDOC_BUNDLE = "drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js"
REDOC_CDN_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
EMPTY_SVG = "data:image/svg+xml,%3Csvg xmlns=%22http://www.w3.org/2000/svg%22 width=%221%22 height=%221%22/%3E"


def _documents(request: HttpRequest) -> dict[str, str]:
    return {
        "swagger_ui": request.build_absolute_uri(reverse("swagger-ui")),
        "redoc": request.build_absolute_uri(reverse("redoc")),
        "openapi": request.build_absolute_uri(reverse("schema")),
    }


def _probes(request: HttpRequest) -> dict[str, str]:
    return {"healthz": request.build_absolute_uri("/healthz"), "readyz": request.build_absolute_uri("/readyz")}


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    """Say what this service is and link its docs, API, admin and probes (the admin's "View site")."""
    context = {
        "title": settings.SPECTACULAR_SETTINGS["TITLE"].removesuffix(" API"),
        "api_root": reverse("api-root"),
        "admin": reverse("admin:index"),
    }
    return render(request, "fastticket/home.html", context)


def _authentication(security: list[dict] | None) -> str:
    if not security:
        return "none"
    return "optional" if {} in security else "bearer"


@cache
def api_operations() -> tuple[dict[str, str], ...]:
    """Return every operation of the OpenAPI document: method, path, summary and authentication."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    return tuple(
        {
            "method": method.upper(),
            "path": path,
            "summary": operation.get("summary") or operation.get("description", "").split("\n")[0],
            "authentication": _authentication(operation.get("security")),
        }
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
    )


class ApiIndexView(APIView):
    """GET /api/v1/: the API's documents, probes and every operation (from its OpenAPI document)."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        summary="The API's index: its documents, probes and every operation",
        responses={200: ApiIndexSerializer, **errors(429)},
        auth=[],
    )
    def get(self, request: Request) -> Response:
        spectacular = settings.SPECTACULAR_SETTINGS
        return Response(
            {
                "name": spectacular["TITLE"],
                "version": spectacular["VERSION"],
                "description": spectacular["DESCRIPTION"],
                "documentation": _documents(request),
                "health": _probes(request),
                "operations": list(api_operations()),
            }
        )


@cache
def _redoc_bundle() -> bytes:
    path = finders.find(REDOC_BUNDLE)
    with open(path, "rb") as bundle:
        return bundle.read().replace(REDOC_CDN_LOGO.encode(), EMPTY_SVG.encode())


@require_safe
@cache_control(public=True, max_age=86400)
def redoc_bundle(request: HttpRequest) -> HttpResponse:
    """Serve ReDoc's standalone bundle with its outside logo replaced (see REDOC_CDN_LOGO)."""
    return HttpResponse(_redoc_bundle(), content_type="text/javascript; charset=utf-8")
