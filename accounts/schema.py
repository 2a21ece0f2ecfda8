"""Tell drf-spectacular that our cached JWT authentication is a bearer scheme."""

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme


class CachedJWTScheme(SimpleJWTScheme):
    target_class = "accounts.authentication.CachedJWTAuthentication"
    name = "jwtAuth"
