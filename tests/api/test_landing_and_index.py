"""The landing page at /, the API index at /api/v1/, and what Swagger's Authorize offers."""

import re

import pytest
from django.contrib import admin

from tests.api.pages import external_urls, linked_urls

pytestmark = pytest.mark.django_db

SCHEMA = {"HTTP_ACCEPT": "application/vnd.oai.openapi+json"}


def _operations(document: dict) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, operations in document["paths"].items() for method in operations}


def test_the_landing_page_says_what_this_is_and_every_link_answers(client):
    response = client.get("/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "first-come, first-served ticketing" in html
    links = linked_urls(html)
    assert {"/api/v1/", "/api/docs/", "/api/redoc/", "/api/schema/", "/admin/", "/healthz", "/readyz"} <= set(links)
    assert external_urls(html) == []
    # /readyz checks the database from a thread of its own, whose connection would outlive the test
    # database: it answers under gunicorn in tests/ops/test_probes_under_gunicorn.py.
    for link in set(links) - {"/readyz"}:
        assert client.get(link).status_code < 400, link


def test_the_admins_view_site_link_goes_to_the_landing_page(client, staff):
    client.force_login(staff)

    page = client.get("/admin/").content.decode()

    assert admin.site.site_url == "/"
    assert re.search(r'<a href="/">View site</a>', page)
    assert client.get("/").status_code == 200


def test_api_root_is_a_json_index_of_every_operation_of_the_schema(api):
    response = api.get("/api/v1/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    index = response.json()
    document = api.get("/api/schema/", **SCHEMA).json()
    assert {(op["method"], op["path"]) for op in index["operations"]} == _operations(document)
    by_route = {(op["method"], op["path"]): op for op in index["operations"]}
    assert by_route[("POST", "/api/v1/tickets/{ticket_id}/reserve/")]["authentication"] == "bearer"
    assert by_route[("GET", "/api/v1/tickets/")]["authentication"] == "optional"
    assert by_route[("POST", "/api/v1/auth/login/")]["authentication"] == "none"
    assert set(index["health"]) == {"healthz", "readyz"}
    for url in [*index["documentation"].values(), index["health"]["healthz"]]:
        assert api.get(url).status_code == 200, url


def test_api_root_answers_with_a_bad_token_too(api):
    api.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")

    assert api.get("/api/v1/").status_code == 200


def test_swagger_authorize_offers_only_the_bearer_scheme_and_says_where_the_token_comes_from(api):
    document = api.get("/api/schema/", **SCHEMA).json()

    schemes = document["components"]["securitySchemes"]
    assert list(schemes) == ["jwtAuth"]
    assert schemes["jwtAuth"]["scheme"] == "bearer"
    assert "POST /api/v1/auth/login/" in schemes["jwtAuth"]["description"]
    used = {
        name
        for ops in document["paths"].values()
        for op in ops.values()
        for req in op.get("security", [])
        for name in req
    }
    assert used == {"jwtAuth"}


def test_redoc_serves_its_bundle_from_here_without_the_cdn_logo(client):
    page = client.get("/api/redoc/").content.decode()
    bundle = client.get("/api/redoc/redoc.standalone.js")

    assert "/api/redoc/redoc.standalone.js" in linked_urls(page)
    assert bundle.status_code == 200
    body = b"".join(bundle.streaming_content) if bundle.streaming else bundle.content
    assert b"Redoc" in body
    assert b"cdn.redoc.ly" not in body
