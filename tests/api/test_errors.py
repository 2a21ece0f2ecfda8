"""The error contract that holds for every endpoint (API.md, Errors)."""

import json
import uuid

import pytest

from accounts.models import User
from tests.api.contract import assert_json_error

SIGNUP = "/api/v1/auth/signup/"
ME = "/api/v1/auth/me/"
NEW_USER = {"username": "carol", "email": "carol@example.com", "password": "plum-tree-harbour-7"}


@pytest.mark.parametrize(
    "path",
    [
        "/api/nope/",
        "/api/v1/nope/",
        "/api/v2/tickets/",
        "/api/v1/tickets/not-a-uuid/",
        "/api/v1/tickets/not-a-uuid/reserve/",
    ],
)
def test_unknown_path_under_api_answers_json_404(api, db, path):
    body = assert_json_error(api.get(path), 404)

    assert set(body) == {"detail"}


def test_unknown_path_under_api_answers_json_404_even_to_a_browser(api, db):
    response = api.get("/api/nope/", HTTP_ACCEPT="text/html,application/xhtml+xml")

    body = assert_json_error(response, 404)
    assert b"<html" not in response.content.lower()
    assert set(body) == {"detail"}


def test_unknown_ticket_id_answers_json_404(api, db):
    body = assert_json_error(api.get(f"/api/v1/tickets/{uuid.uuid4()}/"), 404)

    assert set(body) == {"detail"}


def test_method_not_taken_answers_405_with_allow_header_and_json_detail(alice_api):
    response = alice_api.delete(ME)

    body = assert_json_error(response, 405)
    assert set(body) == {"detail"}
    assert "GET" in response["Allow"]
    assert "DELETE" not in response["Allow"]


def test_get_on_signup_answers_405_allowing_post(api, db):
    response = api.get(SIGNUP)

    assert_json_error(response, 405)
    assert "POST" in response["Allow"]


def test_malformed_json_answers_400_detail_and_stores_nothing(api, db):
    response = api.post(SIGNUP, data='{"username": "carol", ', content_type="application/json")

    body = assert_json_error(response, 400)
    assert set(body) == {"detail"}
    assert not User.objects.exists()


def test_plain_text_body_answers_400_detail_and_stores_nothing(api, db):
    response = api.post(SIGNUP, data="username=carol", content_type="text/plain")

    body = assert_json_error(response, 400)
    assert set(body) == {"detail"}
    assert not User.objects.exists()


def _padded_signup(size: int) -> bytes:
    """Return a valid signup JSON body padded with whitespace to exactly size bytes."""
    body = json.dumps(NEW_USER).encode()
    return body[:-1] + b" " * (size - len(body)) + b"}"


def test_body_over_the_limit_answers_json_413_and_stores_nothing(api, db, settings):
    body = _padded_signup(settings.API_MAX_BODY_BYTES + 1)

    response = api.post(SIGNUP, data=body, content_type="application/json")

    assert set(assert_json_error(response, 413)) == {"detail"}
    assert not User.objects.exists()


def test_body_at_the_limit_is_accepted(api, db, settings):
    body = _padded_signup(settings.API_MAX_BODY_BYTES)

    response = api.post(SIGNUP, data=body, content_type="application/json")

    assert response.status_code == 201, response.content
    assert User.objects.filter(username="carol").exists()


def test_request_with_a_host_outside_allowed_hosts_answers_json(api, db):
    response = api.get("/api/v1/tickets/", HTTP_HOST="attacker.example")

    body = assert_json_error(response, 400)
    assert "detail" in body


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("post", SIGNUP, {"data": {}}, 400),
        ("post", SIGNUP, {"data": "{", "content_type": "application/json"}, 400),
        ("post", "/api/v1/auth/login/", {"data": {"username": "nobody", "password": "wrong-password"}}, 401),
        ("get", ME, {}, 401),
        ("get", ME, {"HTTP_AUTHORIZATION": "Bearer not.a.token"}, 401),
        ("post", "/api/v1/tickets/", {"data": {"title": "x"}}, 401),
        ("get", "/api/nope/", {}, 404),
        ("get", "/api/v1/tickets/not-a-uuid/", {}, 404),
        ("put", SIGNUP, {"data": {}}, 405),
    ],
)
def test_every_error_body_is_a_json_object(api, db, method, path, kwargs, status):
    response = getattr(api, method)(path, **kwargs)

    assert_json_error(response, status)


def test_forbidden_write_answers_json_403_detail(alice_api):
    response = alice_api.post("/api/v1/tickets/", {"title": "x"})

    body = assert_json_error(response, 403)
    assert set(body) == {"detail"}
