"""Usernames and emails are stored NFKC-normalised, so look-alike spellings are one account (API.md, Accounts)."""

import importlib
from types import SimpleNamespace

import pytest
from django.apps import apps as global_apps
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import User
from accounts.services import user_create
from tests.factories import PASSWORD, make_user

SIGNUP = "/api/v1/auth/signup/"
LOGIN = "/api/v1/auth/login/"
KELVIN = "\u212a"  # KELVIN SIGN, NFKC: K
ANGSTROM = "\u212b"  # ANGSTROM SIGN, NFKC: Å (U+00C5)
LONG_S = "\u017f"  # LATIN SMALL LETTER LONG S, NFKC: s

pytestmark = pytest.mark.django_db


def _signup(username: str, email: str | None = None):
    email = email or f"user{abs(hash(username))}@example.com"
    return APIClient().post(SIGNUP, {"username": username, "email": email, "password": PASSWORD}, format="json")


@pytest.mark.parametrize(
    ("first", "look_alike"),
    [
        ("kate", f"{KELVIN}ate"),
        ("\u00c5sa", f"{ANGSTROM}sa"),
        ("max", "\uff4d\uff41\uff58"),  # fullwidth
        ("Max", "\uff2d\uff41\uff58"),
    ],
)
def test_signup_refuses_a_look_alike_of_a_taken_username(first, look_alike):
    assert _signup(first).status_code == 201

    response = _signup(look_alike)

    assert response.status_code == 400
    assert "username" in response.json()
    assert User.objects.count() == 1


@pytest.mark.parametrize(
    ("sent", "stored"),
    [(f"{KELVIN}ate", "Kate"), (f"{ANGSTROM}sa", "\u00c5sa"), ("\uff4d\uff41\uff58", "max")],
)
def test_signup_stores_the_username_nfkc_normalised(sent, stored):
    response = _signup(sent)

    assert response.status_code == 201, response.content
    assert response.json()["username"] == stored
    assert User.objects.get().username == stored


def test_a_username_over_150_characters_once_normalised_answers_400():
    response = _signup("\u337b" * 100)  # each SQUARE ERA NAME HEISEI is two characters in NFKC

    assert response.status_code == 400
    assert "username" in response.json()
    assert not User.objects.exists()


def test_a_username_over_150_characters_as_sent_answers_400_though_shorter_once_normalised():
    response = _signup("e\u0301" * 76)  # 152 characters sent, 76 once NFKC composes each into one

    assert response.status_code == 400
    assert "username" in response.json()
    assert not User.objects.exists()


@pytest.mark.parametrize(
    ("first", "look_alike", "stored"),
    [
        ("kate@example.com", f"{KELVIN}ate@example.com", "Kate@example.com"),
        ("sam@example.com", f"{LONG_S}am@example.com", "sam@example.com"),
    ],
)
def test_signup_refuses_a_look_alike_of_a_taken_email_and_stores_it_normalised(first, look_alike, stored):
    assert _signup("first", email=look_alike).status_code == 201
    assert User.objects.get().email == stored

    response = _signup("second", email=first)

    assert response.status_code == 400
    assert "email" in response.json()


@pytest.mark.parametrize("spelling", [f"{KELVIN}ate", "\uff4b\uff41\uff54\uff45", "KATE"])
def test_login_with_a_look_alike_spelling_logs_in_to_the_account(spelling):
    make_user("kate")

    response = APIClient().post(LOGIN, {"username": spelling, "password": PASSWORD}, format="json")

    assert response.status_code == 200, response.content


def test_the_admin_login_form_takes_a_look_alike_spelling_too():
    make_user("kate", is_staff=True)

    response = Client().post("/admin/login/", {"username": f"{KELVIN}ate", "password": PASSWORD})

    assert response.status_code == 302


def test_the_user_create_service_normalises_for_the_admin_and_commands():
    user = user_create(username=f"{KELVIN}ate", email=f"{KELVIN}ate@EXAMPLE.com", password=PASSWORD)

    assert (user.username, user.email) == ("Kate", "Kate@example.com")


def test_create_user_normalises_the_email_local_part_as_the_username():
    user = User.objects.create_user("zoe", email=f"{KELVIN}ate@Example.COM", password=PASSWORD)

    assert user.email == "Kate@example.com"


def _normalise_existing_users():
    migration = importlib.import_module("accounts.migrations.0003_nfkc_usernames_and_emails")
    migration.normalise_usernames_and_emails(global_apps, SimpleNamespace(connection=connection))


def test_the_migration_normalises_stored_usernames_and_emails():
    User.objects.create(username=f"{KELVIN}elvin", email=f"{KELVIN}elvin@example.com")

    _normalise_existing_users()

    assert User.objects.values_list("username", "email").get() == ("Kelvin", "Kelvin@example.com")


def test_the_migration_leaves_a_username_whose_normal_form_is_taken(capsys):
    User.objects.create(username="kelvin", email="one@example.com")
    User.objects.create(username=f"{KELVIN}elvin", email="two@example.com")

    _normalise_existing_users()

    assert sorted(User.objects.values_list("username", flat=True)) == sorted(["kelvin", f"{KELVIN}elvin"])
    assert f"{KELVIN}elvin" in capsys.readouterr().out
