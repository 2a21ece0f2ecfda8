"""Middleware: the probes before Django's host checks, the API's body limit, the admin's time zone."""

import io
import zoneinfo
from collections.abc import Callable

from django.conf import settings
from django.core.handlers.wsgi import LimitedStream
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from fastticket import health

HEALTH_VIEWS = {"/healthz": health.healthz, "/readyz": health.readyz}


class HealthCheckMiddleware:
    """Answer `/healthz` and `/readyz` first.

    Probes from a load balancer or Docker reach the process by an address that is not in
    ALLOWED_HOSTS, and over plain HTTP, so they must not go through host validation or the HTTPS
    redirect.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = HEALTH_VIEWS.get(request.path_info)
        if view is not None:
            if request.method not in ("GET", "HEAD"):
                response = JsonResponse({"detail": f'Method "{request.method}" not allowed.'}, status=405)
                response["Allow"] = "GET, HEAD"
                return response
            return view(request)
        return self.get_response(request)


class BodySizeLimitMiddleware:
    """Refuse API request bodies larger than API_MAX_BODY_BYTES with a JSON 413 before reading them."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith("/api/"):
            limit = settings.API_MAX_BODY_BYTES
            too_large = JsonResponse({"detail": f"The request body is too large (limit {limit} bytes)."}, status=413)
            if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
                # A chunked body has no Content-Length, so Django and DRF would read it as empty:
                # read it here, at most one byte past the limit, and hand it on with its length.
                body = request.META["wsgi.input"].read(limit + 1)
                if len(body) > limit:
                    return too_large
                request.META["CONTENT_LENGTH"] = str(len(body))
                request._stream = LimitedStream(io.BytesIO(body), len(body))
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return JsonResponse({"detail": "Malformed Content-Length header."}, status=400)
            if length > limit:
                return too_large
        return self.get_response(request)


class AdminTimeZoneMiddleware:
    """Show and read the admin's times in DJANGO_TIME_ZONE; everything else stays in UTC."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.zone = zoneinfo.ZoneInfo(settings.ADMIN_TIME_ZONE)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path_info.startswith("/admin/"):
            return self.get_response(request)
        with timezone.override(self.zone):
            return self.get_response(request)
