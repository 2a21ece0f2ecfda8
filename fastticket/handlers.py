"""The WSGI handler: Django's, with a shorter middleware chain for bearer-token API calls.

A request under /api/ that carries `Authorization: Bearer <token>` is authenticated by its token
alone (simplejwt refuses anything else in that header with a 401, before DRF's session
authentication could be asked), so it never reads a session, a CSRF token or messages, is never a
static file, a probe or an admin page: the middleware for those (BEARER_API_SKIPS) are left out of
its chain. Everything else it gets exactly as every request does (metrics, request ids, security
headers, the body limit, CORS, Common, X-Frame-Options); tests/api/test_bearer_lane.py compares
the two chains' answers.
"""

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, HttpResponse

BEARER_API_SKIPS = frozenset(
    {
        "fastticket.middleware.HealthCheckMiddleware",
        "whitenoise.middleware.WhiteNoiseMiddleware",
        "fastticket.middleware.AdminTimeZoneMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
    }
)


def is_bearer_api_call(request: HttpRequest) -> bool:
    return request.path_info.startswith("/api/") and request.META.get("HTTP_AUTHORIZATION", "").startswith("Bearer ")


class _BearerAPIHandler(WSGIHandler):
    """A handler whose chain is MIDDLEWARE without BEARER_API_SKIPS (with view hooks of its own)."""

    def load_middleware(self, is_async: bool = False) -> None:
        # Django builds a chain from settings.MIDDLEWARE only; at startup, in one thread, give it
        # the shorter list for the time it takes.
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = [path for path in full if path not in BEARER_API_SKIPS]
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full


class FastTicketWSGIHandler(WSGIHandler):
    """Route bearer-token API calls through the shorter chain, everything else through MIDDLEWARE."""

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async)
        full = self._middleware_chain
        bearer = _BearerAPIHandler()._middleware_chain

        def route(request: HttpRequest) -> HttpResponse:
            return bearer(request) if is_bearer_api_call(request) else full(request)

        self._middleware_chain = route
