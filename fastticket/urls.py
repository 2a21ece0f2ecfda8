"""Root URLs: the landing page, the API under /api/v1/, its docs, the admin and the probes (served by middleware)."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, JsonResponse
from django.urls import include, path, re_path
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from fastticket.http import only_methods
from fastticket.metrics import metrics
from fastticket.throttling import login_form_throttled
from fastticket.views import ApiIndexView, home, redoc_bundle


@csrf_exempt
def api_not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """Answer an unknown path under /api/ with JSON, never Django's HTML page.

    CSRF-exempt, or a POST to an unknown or malformed API path would get the CSRF middleware's
    HTML 403 instead of this 404.
    """
    return JsonResponse({"detail": "Not found."}, status=404)


def not_found(request: HttpRequest, exception: Exception | None = None):
    if request.path_info.startswith("/api/"):
        return api_not_found(request, exception)
    return defaults.page_not_found(request, exception)


def bad_request(request: HttpRequest, exception: Exception | None = None):
    # Django answers a disallowed Host header or another SuspiciousOperation here, before any view.
    if request.path_info.startswith("/api/"):
        return JsonResponse({"detail": "Bad request."}, status=400)
    return defaults.bad_request(request, exception)


def server_error(request: HttpRequest):
    if request.path_info.startswith("/api/"):
        return JsonResponse({"detail": "Internal server error."}, status=500)
    return defaults.server_error(request)


admin.site.site_header = "FastTicket box office"
admin.site.site_title = "FastTicket admin"
admin.site.index_title = "Sale day"

handler400 = bad_request
handler404 = not_found
handler500 = server_error

api_v1 = [
    path("auth/", include("accounts.urls")),
    path("", include("tickets.urls")),
    path("", include("reservations.urls")),
]

# The docs are read-only pages: any other method (OPTIONS too, which DRF would answer through the
# HTML renderer) is a JSON 405.
read_only = only_methods("GET", "HEAD")

urlpatterns = [
    path("", home, name="home"),
    path("api/v1/", ApiIndexView.as_view(), name="api-root"),
    path("api/v1/", include(api_v1)),
    path("api/schema/", read_only(SpectacularAPIView.as_view()), name="schema"),
    path("api/docs/", read_only(SpectacularSwaggerView.as_view(url_name="schema")), name="swagger-ui"),
    path("api/redoc/", read_only(SpectacularRedocView.as_view(url_name="schema")), name="redoc"),
    # The HTML login forms, ahead of the routes they shadow (whose names still reverse to them),
    # with the API login's throttles: without them they were a way around its limits.
    path(
        "api-auth/login/",
        login_form_throttled(auth_views.LoginView.as_view(template_name="rest_framework/login.html")),
    ),
    path("admin/login/", login_form_throttled(admin.site.login)),
    path("api/redoc/redoc.standalone.js", redoc_bundle, name="redoc-bundle"),
    path("api-auth/", include("rest_framework.urls")),
    path("admin/", admin.site.urls),
    path("metrics", metrics, name="metrics"),
    re_path(r"^api/", api_not_found),
]
