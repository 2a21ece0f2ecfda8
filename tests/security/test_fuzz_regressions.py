"""What scripts/fuzz.py (schemathesis) found, pinned as fast tests: the schema says what the API does."""

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from tests.factories import access_token, make_ticket
from tickets.models import Ticket


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/tickets/not-a-uuid/reserve/"),
        ("post", "/api/v1/reservations/0.5/cancel/"),
        ("delete", "/api/v1/tickets/0.5/"),
        ("patch", "/api/v1/no-such-thing/"),
    ],
)
def test_a_write_to_a_malformed_or_unknown_api_path_answers_json_404_not_a_csrf_page(alice, method, path):
    client = APIClient(enforce_csrf_checks=True)  # as a real client meets the CSRF middleware
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token(alice)}")

    response = getattr(client, method)(path, {}, format="json")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")


@pytest.mark.parametrize(("field", "value"), [("title", 0), ("title", 1.5), ("quantity", "5")])
def test_a_ticket_field_of_the_wrong_json_type_answers_400(staff_api, field, value):
    body = {"title": "Gala", "quantity": 5, "event_time": "2099-01-01T20:00:00Z", field: value}

    response = staff_api.post("/api/v1/tickets/", body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not Ticket.objects.exists()


def test_a_signup_username_of_the_wrong_json_type_answers_400(api, db):
    body = {"username": 12345678, "email": "numbers@example.com", "password": "quiet-harbour-lantern-7"}

    response = api.post("/api/v1/auth/signup/", body, format="json")

    assert response.status_code == 400
    assert "username" in response.json()
    assert not User.objects.exists()


@pytest.mark.parametrize("page_size", ["null", "abc", "0", "-3", "2.5", " 5", "+5", "5_0", "\u0665", "", "00"])
def test_a_page_size_that_is_not_a_positive_integer_answers_400(api, db, page_size):
    response = api.get("/api/v1/tickets/", {"page_size": page_size})

    assert response.status_code == 400
    assert "page_size" in response.json()


@pytest.mark.parametrize("page", ["", "last", "abc", " 1", "+1", "1_0", "\u0661", "1.0"])
def test_a_page_that_is_not_a_page_number_answers_404(api, db, page):
    make_ticket()

    assert api.get("/api/v1/tickets/", {"page": page}).status_code == 404


@pytest.fixture
def schema(api, db) -> dict:
    response = api.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def test_the_schema_says_request_bodies_are_json_objects_without_unknown_fields(schema):
    bodies = [
        operation["requestBody"]["content"]
        for path in schema["paths"].values()
        for operation in path.values()
        if "requestBody" in operation
    ]
    components = schema["components"]["schemas"]

    assert bodies
    for content in bodies:
        assert list(content) == ["application/json"]
        name = content["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
        assert components[name].get("additionalProperties") is False, name


def test_the_schema_says_the_catalogue_needs_no_credentials(schema):
    for path in ("/api/v1/tickets/", "/api/v1/tickets/{id}/"):
        assert {} in schema["paths"][path]["get"]["security"], path


def test_the_schema_gives_the_idempotency_key_its_rule(schema):
    parameters = schema["paths"]["/api/v1/tickets/{ticket_id}/reserve/"]["post"]["parameters"]
    key = next(parameter for parameter in parameters if parameter["name"] == "Idempotency-Key")

    assert key["schema"]["maxLength"] == 64
    assert key["schema"]["pattern"]
