"""The browsable API: HTML for browsers and a session login at /api-auth/login/ (API.md, intro)."""

import re

import pytest
from django.test import Client

from tests.factories import PASSWORD

BROWSER = "text/html,application/xhtml+xml"
LOGIN_PAGE = "/api-auth/login/"
ME = "/api/v1/auth/me/"

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser() -> Client:
    return Client(enforce_csrf_checks=True)


def _csrf_token(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, "the login form carries a CSRF token"
    return match.group(1)


def _session_login(browser: Client, username: str, password: str):
    page = browser.get(LOGIN_PAGE)
    return browser.post(
        LOGIN_PAGE,
        {
            "username": username,
            "password": password,
            "next": ME,
            "csrfmiddlewaretoken": _csrf_token(page.content.decode()),
        },
    )


def test_ticket_list_renders_html_for_a_browser(api):
    response = api.get("/api/v1/tickets/", HTTP_ACCEPT=BROWSER)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert "<html" in response.content.decode().lower()


def test_ticket_list_answers_json_by_default(api):
    response = api.get("/api/v1/tickets/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"


def test_api_auth_login_renders_a_login_form(browser):
    response = browser.get(LOGIN_PAGE)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert 'name="username"' in html
    assert 'name="password"' in html


def test_session_login_lets_the_browsable_api_show_me(browser, alice):
    login = _session_login(browser, "alice", PASSWORD)
    assert login.status_code == 302, login.content
    assert login["Location"] == ME

    page = browser.get(ME, HTTP_ACCEPT=BROWSER)

    assert page.status_code == 200
    assert page["Content-Type"].startswith("text/html")
    assert str(alice.pk) in page.content.decode()


def test_session_authenticates_json_calls_too(browser, alice):
    _session_login(browser, "alice", PASSWORD)

    response = browser.get(ME, HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    assert response.json()["username"] == "alice"


def test_session_login_with_a_wrong_password_does_not_authenticate(browser, alice):
    login = _session_login(browser, "alice", "not-the-password-1")
    assert login.status_code == 200, "the form is shown again with an error"

    response = browser.get(ME, HTTP_ACCEPT="application/json")

    assert response.status_code == 401
