"""POST /api/v1/auth/signup/ (API.md, Accounts: signup rules)."""

import uuid
from datetime import datetime

import pytest

from accounts.models import User

SIGNUP = "/api/v1/auth/signup/"
PASSWORD = "plum-tree-harbour-7"
USER_FIELDS = {"id", "username", "email", "is_staff", "created_at"}

pytestmark = pytest.mark.django_db


def _signup(api, **fields):
    """Post carol's signup with these fields changed; a field given as ... is left out."""
    data = {"username": "carol", "email": "carol@example.com", "password": PASSWORD, **fields}
    return api.post(SIGNUP, {name: value for name, value in data.items() if value is not ...}, format="json")


def _assert_refused_on(response, field: str, users_before: int = 0) -> list[str]:
    assert response.status_code == 400, response.content
    body = response.json()
    assert field in body, body
    assert User.objects.count() == users_before
    return body[field]


def test_signup_answers_201_with_the_user_and_no_password(api):
    response = _signup(api)

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == USER_FIELDS
    assert body["username"] == "carol"
    assert body["email"] == "carol@example.com"
    assert body["is_staff"] is False
    assert uuid.UUID(body["id"])
    assert datetime.fromisoformat(body["created_at"]).utcoffset() is not None
    assert "password" not in response.content.decode()
    assert PASSWORD not in response.content.decode()


def test_signup_stores_one_user_with_a_hashed_password(api):
    body = _signup(api).json()

    user = User.objects.get()
    assert str(user.pk) == body["id"]
    assert user.password != PASSWORD
    assert user.check_password(PASSWORD)
    assert user.is_active and not user.is_staff


@pytest.mark.parametrize("username", ["c", "x" * 150, "a.b@c+d-e_f", "Zoë_2"])
def test_signup_accepts_a_django_username(api, username):
    response = _signup(api, username=username)

    assert response.status_code == 201, response.content
    assert response.json()["username"] == username


@pytest.mark.parametrize(
    "username",
    ["", "x" * 151, "has space", "no/slash", "no!bang", "semi;colon", " carol", "carol\n", "\ufe6bcarol"],
)
def test_signup_refuses_a_username_outside_django_rules(api, username):
    _assert_refused_on(_signup(api, username=username), "username")


def test_signup_refuses_a_username_taken_in_another_case(api, alice):
    messages = _assert_refused_on(_signup(api, username="ALICE"), "username", users_before=1)

    assert messages


@pytest.mark.parametrize(
    "email",
    ["", "not-an-email", "carol@", "@example.com", "carol@example", " carol@example.com", "carol@example.com\n"],
)
def test_signup_refuses_an_invalid_email(api, email):
    _assert_refused_on(_signup(api, email=email), "email")


def test_signup_refuses_an_email_taken_in_another_case(api, alice):
    assert alice.email == "alice@example.com"

    _assert_refused_on(_signup(api, email="ALICE@Example.COM"), "email", users_before=1)


def test_signup_refuses_a_password_too_similar_to_the_username(api):
    messages = _assert_refused_on(_signup(api, username="margaretha", password="margaretha1!"), "password")

    assert any("too similar" in message for message in messages), messages


def test_signup_refuses_a_password_too_similar_to_the_email(api):
    response = _signup(api, email="fernando.pessoa@example.com", password="fernandopessoa")

    messages = _assert_refused_on(response, "password")
    assert any("too similar" in message for message in messages), messages


def test_signup_refuses_a_password_under_8_characters(api):
    messages = _assert_refused_on(_signup(api, password="Xk7#pq2"), "password")

    assert any("too short" in message for message in messages), messages


def test_signup_accepts_a_password_of_exactly_8_characters(api):
    assert _signup(api, password="Xk7#pq2w").status_code == 201


def test_signup_refuses_a_common_password(api):
    messages = _assert_refused_on(_signup(api, password="iloveyou"), "password")

    assert any("too common" in message for message in messages), messages


def test_signup_refuses_an_all_digit_password(api):
    messages = _assert_refused_on(_signup(api, password="49275830164"), "password")

    assert any("entirely numeric" in message for message in messages), messages


@pytest.mark.parametrize("field", ["username", "email", "password"])
def test_signup_refuses_a_missing_field(api, field):
    _assert_refused_on(_signup(api, **{field: ...}), field)


def test_signup_with_an_empty_body_names_every_missing_field(api):
    response = api.post(SIGNUP, {}, format="json")

    assert response.status_code == 400
    assert set(response.json()) == {"username", "email", "password"}
    assert not User.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("username", ["carol"]),
        ("username", None),
        ("email", {"address": "carol@example.com"}),
        ("email", 42),
        ("password", True),
        ("password", None),
    ],
)
def test_signup_refuses_a_wrong_type(api, field, value):
    _assert_refused_on(_signup(api, **{field: value}), field)


def test_signup_refuses_a_body_that_is_not_an_object(api):
    response = api.post(SIGNUP, ["carol", "carol@example.com", PASSWORD], format="json")

    assert response.status_code == 400
    assert isinstance(response.json(), dict)
    assert not User.objects.exists()


@pytest.mark.parametrize(("field", "value"), [("is_staff", True), ("is_superuser", True), ("first_name", "Carol")])
def test_signup_refuses_an_unknown_field_and_stores_nothing(api, field, value):
    _assert_refused_on(_signup(api, **{field: value}), field)
