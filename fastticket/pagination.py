"""The API's one page shape: `{"count", "next", "previous", "results"}`."""

from rest_framework import pagination
from rest_framework.exceptions import ValidationError


class PageNumberPagination(pagination.PageNumberPagination):
    """Pages of 20 by default; `?page_size=` is capped at 100 rather than refused.

    A `page_size` that is not a positive integer is a 400 (DRF would ignore it), and a `page` that
    is not a page number, an empty one too, is a 404 like a page past the end (DRF would read an
    empty one as page 1). Both are ASCII digits only, as the schema's integers: int() would also
    read " 5", "+5", "5_0" or an Arabic-Indic five (U+0665) as 5.
    """

    page_size_query_param = "page_size"
    max_page_size = 100
    last_page_strings = ()

    def get_page_number(self, request, paginator):
        raw = request.query_params.get(self.page_query_param, "1")
        # Anything else makes Django's paginator raise PageNotAnInteger, which DRF answers 404.
        return raw if _is_ascii_number(raw) else "not a page number"

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


def _is_ascii_number(text: str) -> bool:
    return text.isascii() and text.isdigit()
