"""DRF throttles with API.md's scopes; each rate comes from a THROTTLE_* variable and may be `off`.

They keep their counters in the django-redis cache, which fails open while Redis is down. The
login throttles also guard the HTML login forms (`login_form_throttled`), with the same counters.
"""

import functools
import math
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from rest_framework import throttling
from rest_framework.request import Request

from accounts.selectors import username_folded


class AnonRateThrottle(throttling.AnonRateThrottle):
    """Anonymous requests, per client IP."""

    scope = "anon"


class UserRateThrottle(throttling.UserRateThrottle):
    """Authenticated requests, per user."""

    scope = "user"

    def get_cache_key(self, request, view):
        # DRF's would count anonymous callers per IP too, so THROTTLE_ANON=off could not free them.
        if not request.user or not request.user.is_authenticated:
            return None
        return super().get_cache_key(request, view)


class AuthRateThrottle(throttling.AnonRateThrottle):
    """Signup, login (the API's and the HTML forms') and refresh, per client IP, whoever is logged in."""

    scope = "auth"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginUsernameRateThrottle(throttling.SimpleRateThrottle):
    """Login attempts per account, so one account cannot be guessed at from many IPs.

    Keyed on the name as login compares it (NFKC, then the database's UPPER()), so that every
    spelling that logs in to one account counts against that account. Reads the name from the
    API's JSON body or from an HTML login form.
    """

    scope = "auth"

    def get_cache_key(self, request, view):
        data = request.data if isinstance(request, Request) else request.POST
        username = data.get("username") if hasattr(data, "get") else None
        if not isinstance(username, str) or not username:
            return None
        return self.cache_format % {"scope": "login-user", "ident": username_folded(username=username)}


class PasswordChangeRateThrottle(throttling.SimpleRateThrottle):
    """Password changes per user, so a stolen access token cannot guess at the old password quickly."""

    scope = "auth"

    def get_cache_key(self, request, view):
        if not request.user or not request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": "password-user", "ident": request.user.pk}


class BookingRateThrottle(throttling.UserRateThrottle):
    """Reserve and cancel calls, per user."""

    scope = "booking"


LOGIN_THROTTLES = (AuthRateThrottle, LoginUsernameRateThrottle)


def login_form_throttled(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Give an HTML login form the API login's limits: THROTTLE_AUTH per address and per account.

    The same throttles and counters as `POST /api/v1/auth/login/`, so the admin's form, the
    browsable API's and the API share one budget per account and per address. Every POST counts,
    as at the API; a refused one is a 429 page with Retry-After and never reaches the form.
    """

    @functools.wraps(view)
    def throttled(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method == "POST":
            throttles = [throttle_class() for throttle_class in LOGIN_THROTTLES]
            waits = [throttle.wait() or 1 for throttle in throttles if not throttle.allow_request(request, None)]
            if waits:
                retry_after = max(1, math.ceil(max(waits)))
                response = render(request, "login_throttled.html", {"retry_after": retry_after}, status=429)
                response["Retry-After"] = str(retry_after)
                return response
        return view(request, *args, **kwargs)

    return throttled
