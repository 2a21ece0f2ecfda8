"""Assertions for API.md's error shapes, shared by the test modules."""

UNAUTHENTICATED_CODES = {"not_authenticated", "authentication_failed", "token_not_valid"}


def assert_json_error(response, status: int) -> dict:
    """Assert an error answer with this status whose body is a JSON object; return the body."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert isinstance(body, dict), body
    return body


def assert_401(response, code: str | None = None) -> dict:
    """Assert a 401 with body `{"detail", "code"}`, the code one of API.md's three (or exactly `code`)."""
    body = assert_json_error(response, 401)
    assert set(body) == {"detail", "code"}, body
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["code"] in UNAUTHENTICATED_CODES, body
    if code is not None:
        assert body["code"] == code, body
    return body
