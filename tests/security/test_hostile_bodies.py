"""Inputs built to break the parser or the routing get a clear 4xx JSON answer and store nothing (API.md, Errors)."""

import logging
import re

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from reservations.models import Reservation
from tests.factories import make_ticket
from tickets.models import Ticket

pytestmark = pytest.mark.django_db

DEEP = 1000


def _nested(depth: int, *, opener: str = "[", closer: str = "]") -> bytes:
    return (opener * depth + closer * depth).encode()


def _deep_object(depth: int) -> bytes:
    return ('{"username":' + '{"a":' * (depth - 1) + "1" + "}" * depth).encode()


def _stored() -> tuple[int, int, int]:
    return User.objects.count(), Ticket.objects.count(), Reservation.objects.count()


@pytest.fixture
def no_error_logs(caplog):
    """Fail the test if anything logged at ERROR (a traceback per request is what this guards against)."""
    caplog.set_level(logging.WARNING)
    yield
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert not errors, [record.getMessage() for record in errors]


@pytest.fixture
def targets(alice_api, staff_api, api):
    ticket = make_ticket()
    return {
        "login": (api, "/api/v1/auth/login/"),
        "signup": (api, "/api/v1/auth/signup/"),
        "refresh": (api, "/api/v1/auth/refresh/"),
        "reserve": (alice_api, f"/api/v1/tickets/{ticket.pk}/reserve/"),
        "ticket create": (staff_api, "/api/v1/tickets/"),
        "ticket update": (staff_api, f"/api/v1/tickets/{ticket.pk}/"),
    }


@pytest.mark.parametrize("target", ["login", "signup", "refresh", "reserve", "ticket create", "ticket update"])
@pytest.mark.parametrize("body", [_nested(DEEP), _deep_object(DEEP), _nested(DEEP, opener='{"a":', closer="}")])
def test_json_nested_1000_deep_answers_400_json_and_stores_nothing(targets, target, body, no_error_logs):
    client, path = targets[target]
    before = _stored()
    method = client.patch if target == "ticket update" else client.post

    response = method(path, body, content_type="application/json")

    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/json")
    assert "detail" in response.json()
    assert _stored() == before


def test_json_nested_past_the_limit_but_under_the_recursion_limit_answers_400(api, no_error_logs):
    response = api.post("/api/v1/auth/login/", _nested(200), content_type="application/json")

    assert response.status_code == 400
    assert "nested" in response.json()["detail"]


def test_json_nested_a_few_levels_is_still_parsed(api, alice):
    response = api.post(
        "/api/v1/auth/login/", b'{"username": [[["alice"]]], "password": "x"}', content_type="application/json"
    )

    assert response.status_code == 400
    assert "username" in response.json()


METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]
OPERATIONS_PATHS = ["/api/docs/", "/api/redoc/", "/api/schema/", "/healthz", "/readyz", "/metrics"]


def _documented_paths(client: APIClient, ids: dict[str, str]) -> list[str]:
    schema = client.get("/api/schema/", {"format": "json"}).json()
    return [re.sub(r"\{(\w+)\}", lambda match: ids[match.group(1)], path) for path in schema["paths"]]


@pytest.mark.parametrize("persona", ["anonymous", "user", "staff"])
def test_every_method_on_every_documented_path_answers_without_a_5xx(persona, api, alice_api, staff_api, no_error_logs):
    # /readyz is left out of the in-process run: its checker thread keeps a connection open (see
    # tests/security/test_observability.py); tests/ops covers its methods under gunicorn.
    ticket = make_ticket()
    client = {"anonymous": api, "user": alice_api, "staff": staff_api}[persona]
    ids = {"id": str(ticket.pk), "ticket_id": str(ticket.pk)}
    paths = _documented_paths(api, ids) + [path for path in OPERATIONS_PATHS if path != "/readyz"]
    failures = []
    for path in paths:
        for method in METHODS:
            response = client.generic(method, path, b"{}", content_type="application/json")
            if response.status_code >= 500:
                failures.append((method, path, response.status_code))
            elif response.status_code >= 400 and not response["Content-Type"].startswith("application/json"):
                failures.append((method, path, response.status_code, response["Content-Type"]))

    assert not failures


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/", "/api/schema/"])
@pytest.mark.parametrize("method", ["OPTIONS", "POST", "DELETE", "TRACE"])
def test_the_docs_answer_other_methods_than_get_with_a_json_405(api, path, method):
    response = api.generic(method, path)

    assert response.status_code == 405, response.content
    assert response["Content-Type"].startswith("application/json")
    assert "GET" in response["Allow"]
    assert response.json()["detail"]


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_the_docs_still_render_for_a_browser(api, path):
    response = api.get(path, HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
