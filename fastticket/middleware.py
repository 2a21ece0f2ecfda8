"""Middleware: the probes before Django's host checks, the API's body limit, the request id's check,
the admin's time zone."""

import io
import re
import zoneinfo
from collections.abc import Callable

import django_prometheus.middleware
from django.conf import settings
from django.core.handlers.wsgi import LimitedStream
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from fastticket import health
from fastticket.http import only_methods

# What the WSGI server's input stream raises for a chunked body with broken framing (a bad or
# negative size, a missing CRLF, a bad trailer, a truncated body): gunicorn's parse errors, and
# OSError, which gunicorn's NoMoreData and other servers' read errors are.
try:
    from gunicorn.http.errors import ParseException as _GunicornParseError
except ImportError:  # pragma: no cover (served by another WSGI server)
    BROKEN_FRAMING: tuple[type[Exception], ...] = (OSError, ValueError)
else:
    BROKEN_FRAMING = (OSError, ValueError, _GunicornParseError)

REQUEST_ID_META = "HTTP_X_REQUEST_ID"
REQUEST_ID_PATTERN = re.compile(r"[!-~]{1,128}")

_probe = only_methods("GET", "HEAD")
HEALTH_VIEWS = {"/healthz": _probe(health.healthz), "/readyz": _probe(health.readyz)}


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
                try:
                    body = request.META["wsgi.input"].read(limit + 1)
                except BROKEN_FRAMING:
                    return JsonResponse({"detail": "Malformed chunked request body."}, status=400)
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


class RequestIdMiddleware:
    """Drop a client's X-Request-ID that is not 1-128 printable ASCII characters without spaces.

    django-guid, next in the chain, echoes the header and starts every log line of the request with
    it; without one it makes its own. An unchecked id would put up to 8 KB of anything, newlines
    included, into each log line and into the response headers.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request.META.get(REQUEST_ID_META)
        if request_id is not None and not REQUEST_ID_PATTERN.fullmatch(request_id):
            del request.META[REQUEST_ID_META]
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


class PrometheusAfterMiddleware(django_prometheus.middleware.PrometheusAfterMiddleware):
    """django-prometheus's after-middleware, keeping each labelled child it has made.

    Its `labels()` takes the metric's lock and checks the label names on every request, several
    times a request; the children never change, so look each one up once.
    """

    _MAX_CHILDREN = 10_000

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._children: dict[tuple, object] = {}

    def label_metric(self, metric, request, response=None, **labels):
        if not labels:
            return metric
        key = (id(metric), *sorted(labels.items()))
        child = self._children.get(key)
        if child is None:
            if len(self._children) >= self._MAX_CHILDREN:
                self._children.clear()
            child = self._children[key] = metric.labels(**labels)
        return child
