"""docs/api.md, the project's own API reference, covers every path of the OpenAPI document (and of API.md)."""

import re

import pytest

from tests.servers import PROJECT_DIR

REFERENCE = PROJECT_DIR / "docs" / "api.md"
# The HTTP contract beside the project's checkout (absent from a plain clone).
CONTRACT = PROJECT_DIR.parent / "shared" / "API.md"
PATH = re.compile(r"(/api/v1/[A-Za-z0-9_{}/.-]*|/healthz|/readyz|/metrics)")


def _paths(text: str) -> set[str]:
    """Return the API paths a Markdown page names, with every `{parameter}` written `{}`."""
    return {re.sub(r"\{[^}]*\}", "{}", path) for path in PATH.findall(text)}


def test_every_path_of_the_openapi_document_is_in_docs_api_md(api):
    document = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    schema_paths = _paths(" ".join(document["paths"]))
    assert "/api/v1/tickets/{}/reserve/" in schema_paths, "control: the schema's paths are read"

    missing = schema_paths - _paths(REFERENCE.read_text())

    assert missing == set(), f"docs/api.md does not document {sorted(missing)}"


@pytest.mark.skipif(not CONTRACT.is_file(), reason="../shared/API.md is only beside the project's own checkout")
def test_every_path_of_the_http_contract_is_in_docs_api_md():
    missing = _paths(CONTRACT.read_text()) - _paths(REFERENCE.read_text())

    assert missing == set(), f"docs/api.md does not document {sorted(missing)}"


def test_the_readme_links_the_api_reference():
    assert "](docs/api.md)" in (PROJECT_DIR / "README.md").read_text()
