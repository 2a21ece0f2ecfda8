"""Helpers for tests of HTML pages: the browsable API, Swagger UI and ReDoc."""

import re

from django.contrib.staticfiles import finders

_URL_ATTRIBUTE = re.compile(r"""\b(?:src|href)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
_EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)


def linked_urls(html: str) -> list[str]:
    """Return every src and href value in the page."""
    return _URL_ATTRIBUTE.findall(html)


def external_urls(html: str) -> list[str]:
    """Return the src and href values that point off the site (http://, https://, //host)."""
    return [url for url in linked_urls(html) if _EXTERNAL.match(url)]


def missing_static_files(html: str, static_url: str) -> list[str]:
    """Return the static files the page links to that no static finder can find."""
    paths = [url.split("?")[0].removeprefix(static_url) for url in linked_urls(html) if url.startswith(static_url)]
    return [path for path in paths if finders.find(path) is None]
