"""The API's one page shape: `{"count", "next", "previous", "results"}`."""

from django.core.paginator import PageNotAnInteger, Paginator
from rest_framework import pagination
from rest_framework.exceptions import ValidationError


def _is_ascii_number(text: str) -> bool:
    """ASCII digits only, as the schema's integers: int() also reads " 5", "+5", "5_0" or U+0665 as 5."""
    return text.isascii() and text.isdigit()


class _Paginator(Paginator):
    """Django's paginator, reading a page number sent as text only when it is ASCII digits."""

    def validate_number(self, number):
        if isinstance(number, str) and not _is_ascii_number(number):
            raise PageNotAnInteger(self.error_messages["invalid_page"])
        return super().validate_number(number)


class PageNumberPagination(pagination.PageNumberPagination):
    """Pages of 20 by default; `?page_size=` is capped at 100 rather than refused.

    A `page_size` that is not a positive integer is a 400 (DRF would ignore it), and a `page` that
    is not a page number, an empty one too, is a 404 like a page past the end (DRF would read an
    empty one as page 1). Both take ASCII digits only.
    """

    django_paginator_class = _Paginator
    page_size_query_param = "page_size"
    max_page_size = 100
    last_page_strings = ()

    def get_page_number(self, request, paginator):
        return request.query_params.get(self.page_query_param, 1)

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is not None and not (_is_ascii_number(raw) and int(raw) > 0):
            raise ValidationError({self.page_size_query_param: ["A positive integer is required."]})
        return super().get_page_size(request)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"]["minimum"] = 1
        return parameters
