"""The API's one page shape: `{"count", "next", "previous", "results"}`."""

from rest_framework import pagination


class PageNumberPagination(pagination.PageNumberPagination):
    """Pages of 20 by default; `?page_size=` is capped at 100 rather than refused."""

    page_size_query_param = "page_size"
    max_page_size = 100
