"""The OpenAPI document, Swagger UI and ReDoc (API.md, Operations)."""

import pytest

from tests.api.pages import external_urls, linked_urls, missing_static_files
from tests.ops.servers import run_manage


def test_schema_is_an_openapi_3_document_listing_the_api(api):
    response = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert {"/api/v1/auth/signup/", "/api/v1/auth/login/", "/api/v1/auth/me/"} <= set(document["paths"])


def test_schema_documents_the_401_shape_of_me(api):
    document = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    assert "401" in document["paths"]["/api/v1/auth/me/"]["get"]["responses"]


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_docs_page_renders_html(api, path):
    response = api.get(path)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert "/api/schema/" in response.content.decode()


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_docs_page_references_no_external_urls(api, path):
    html = api.get(path).content.decode()

    assert linked_urls(html), "control: the page links its scripts"
    assert external_urls(html) == []


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_docs_page_assets_are_served_from_this_site(api, settings, path):
    html = api.get(path).content.decode()

    assert missing_static_files(html, settings.STATIC_URL) == []


@pytest.mark.slow
def test_spectacular_validates_the_schema_without_warnings(tmp_path):
    result = run_manage("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))

    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "schema.yml").read_text().startswith("openapi: 3.")
