"""DRF throttles with API.md's scopes; each rate comes from a THROTTLE_* variable and may be `off`.

They keep their counters in the django-redis cache, which fails open while Redis is down.
"""

from rest_framework import throttling


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
    """Signup, login and refresh, per client IP, whoever is logged in."""

    scope = "auth"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginUsernameRateThrottle(throttling.SimpleRateThrottle):
    """Login attempts per target username, so one account cannot be guessed at from many IPs."""

    scope = "auth"

    def get_cache_key(self, request, view):
        username = request.data.get("username") if hasattr(request.data, "get") else None
        if not isinstance(username, str) or not username:
            return None
        return self.cache_format % {"scope": "login-user", "ident": username.lower()[:150]}


class BookingRateThrottle(throttling.UserRateThrottle):
    """Reserve and cancel calls, per user."""

    scope = "booking"
