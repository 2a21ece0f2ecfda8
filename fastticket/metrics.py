"""Prometheus metrics at /metrics: GET only, for staff or scrapers on an allowed network only."""

import ipaddress
import os

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess

from fastticket.http import only_methods

# Headers a proxy adds for the client it forwards. A request that carries one came through a
# proxy (or claims to): its REMOTE_ADDR is the proxy's, not the client's, and proves nothing.
FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def _allowed_network(request: HttpRequest) -> bool:
    """Tell whether the request comes straight from an allowed network, not forwarded by a proxy."""
    if any(header in request.META for header in FORWARDING_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in network for network in settings.METRICS_ALLOWED_NETWORKS)


def _registry() -> CollectorRegistry:
    """Aggregate all gunicorn workers when prometheus_client runs in multiprocess mode."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


# CSRF-exempt, or a POST would meet the CSRF middleware's HTML 403 instead of the JSON 405.
@csrf_exempt
@only_methods("GET", "HEAD")
def metrics(request: HttpRequest) -> HttpResponse:
    """Serve the metrics; anyone else gets a 404, as if there were nothing here."""
    user = getattr(request, "user", None)
    is_staff = bool(user and user.is_authenticated and user.is_staff)
    if not (is_staff or _allowed_network(request)):
        return JsonResponse({"detail": "Not found."}, status=404)
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
