"""Plain Django views' answers in API.md's error shapes, for views outside DRF."""

import functools
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse


def method_not_allowed(request: HttpRequest, allowed: tuple[str, ...]) -> JsonResponse:
    """Return API.md's 405: `{"detail"}` and an Allow header."""
    response = JsonResponse({"detail": f'Method "{request.method}" not allowed.'}, status=405)
    response["Allow"] = ", ".join(allowed)
    return response


def only_methods(*allowed: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Answer every method but `allowed` with a JSON 405 before the view runs (OPTIONS and TRACE too)."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def checked(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method not in allowed:
                return method_not_allowed(request, allowed)
            return view(request, *args, **kwargs)

        return checked

    return decorator
