"""Content negotiation with a fast path for the common API client."""

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer

_PLAIN_ACCEPTS = {"", "*/*", "application/json"}


class JSONFirstContentNegotiation(DefaultContentNegotiation):
    """Answer JSON straight away when the client accepts JSON or anything, as API clients do.

    DRF's full negotiation (parsing and ranking every media type against every renderer) is
    only needed when a browser asks for HTML or a client asks for something else.
    """

    def select_renderer(self, request, renderers, format_suffix=None):
        accept = request.META.get("HTTP_ACCEPT", "").strip()
        if (
            not format_suffix
            and accept in _PLAIN_ACCEPTS
            and renderers
            and isinstance(renderers[0], JSONRenderer)
            and self.settings.URL_FORMAT_OVERRIDE not in request.query_params
        ):
            return renderers[0], renderers[0].media_type
        return super().select_renderer(request, renderers, format_suffix)
