"""The WSGI handler's shorter chain for bearer-token API calls answers exactly as the full chain does."""

import io
import json
import sys
from datetime import timedelta

import pytest
from django.contrib.sessions.middleware import SessionMiddleware
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from django.db.models import F
from django.utils import timezone

from fastticket.handlers import FastTicketWSGIHandler
from reservations.selectors import queue_stats
from reservations.services import reservation_create
from tests.factories import access_token, make_ticket, make_user
from tests.reservations.waiting_room import queue_url, room_ticket

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """Keep the test's database connection across the handler's requests, as Django's test client does."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def _call(app, method: str, path: str, *, token: str | None, body: bytes = b"", **headers: str):
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_X_REQUEST_ID": "lane-test-0001",
        **{f"HTTP_{name.upper()}": value for name, value in headers.items()},
    }
    if body:
        environ["CONTENT_TYPE"] = "application/json"
    if token is not None:
        environ["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    answer = {}

    def start_response(status, response_headers, exc_info=None):
        answer["status"], answer["headers"] = status, sorted(response_headers)

    answer["body"] = b"".join(app(environ, start_response))
    return answer


@pytest.fixture
def sold_out_ticket(alice):
    ticket = make_ticket(quantity=1)
    reservation_create(user=alice, ticket_id=ticket.pk)
    return ticket


def test_bearer_api_calls_skip_the_session_middleware_and_nothing_else_does(monkeypatch, bob):
    calls = []
    monkeypatch.setattr(SessionMiddleware, "process_request", lambda self, request: calls.append(request.path))
    app = FastTicketWSGIHandler()

    _call(app, "GET", "/api/v1/auth/me/", token=access_token(bob))
    _call(app, "GET", "/api/v1/tickets/", token=None)
    _call(app, "GET", "/admin/login/", token=access_token(bob))

    assert calls == ["/api/v1/tickets/", "/admin/login/"]


@pytest.mark.parametrize(
    ("method", "path", "body", "headers"),
    [
        ("GET", "/api/v1/auth/me/", b"", {}),
        ("POST", "/api/v1/tickets/{sold_out}/reserve/", b"", {}),
        ("POST", "/api/v1/tickets/{sold_out}/reserve/", b'{"seat": 1}', {}),
        ("PUT", "/api/v1/tickets/{sold_out}/reserve/", b"", {}),
        ("POST", "/api/v1/tickets/00000000-0000-0000-0000-000000000000/reserve/", b"", {}),
        ("GET", "/api/v1/tickets/", b"", {"ORIGIN": "https://shop.example.com"}),
        ("GET", "/api/v1/reservations/", b"", {}),
        ("GET", "/api/v1/nowhere/", b"", {}),
        ("POST", "/api/v1/auth/logout/", b"{" * 100, {}),
    ],
)
def test_the_bearer_lane_answers_exactly_as_the_full_chain(method, path, body, headers, bob, sold_out_ticket):
    path = path.format(sold_out=sold_out_ticket.pk)
    token = access_token(bob)

    lane = _call(FastTicketWSGIHandler(), method, path, token=token, body=body, **headers)
    full = _call(WSGIHandler(), method, path, token=token, body=body, **headers)

    assert lane == full
    assert ("X-Request-ID", "lane-test-0001") in lane["headers"]


def test_the_browsable_api_still_renders_for_a_bearer_token_in_the_shorter_chain(bob):
    """The HTML page differs only by its CSRF token (random in every answer), so compare what it shows."""
    lane = _call(FastTicketWSGIHandler(), "GET", "/api/v1/reservations/", token=access_token(bob), ACCEPT="text/html")

    assert lane["status"].startswith("200")
    assert ("Content-Type", "text/html; charset=utf-8") in lane["headers"]
    assert b"Reservation List" in lane["body"] or b"reservation" in lane["body"].lower()


def test_a_bad_bearer_token_is_a_401_in_both_chains(sold_out_ticket):
    path = f"/api/v1/tickets/{sold_out_ticket.pk}/reserve/"

    lane = _call(FastTicketWSGIHandler(), "POST", path, token="not-a-token")
    full = _call(WSGIHandler(), "POST", path, token="not-a-token")

    assert lane == full
    assert lane["status"].startswith("401")
    assert json.loads(lane["body"])["code"] == "token_not_valid"


def test_a_deactivated_user_s_token_is_refused_by_reserve_without_a_cached_user(sold_out_ticket):
    """reserve reads no user on its own (BearerJWTAuthentication): its first statement checks the account."""
    carol = make_user("carol")
    token = access_token(carol)
    type(carol).objects.filter(pk=carol.pk).update(is_active=False)

    answer = _call(FastTicketWSGIHandler(), "POST", f"/api/v1/tickets/{make_ticket().pk}/reserve/", token=token)

    assert answer["status"].startswith("401"), answer
    assert json.loads(answer["body"]) == {"detail": "User is inactive", "code": "authentication_failed"}


@pytest.mark.parametrize("change", ["deactivated", "password_changed", "deleted"])
def test_a_join_refuses_a_token_whose_account_changed_as_the_full_chain_does(change):
    """Joining reads no user on its own either (BearerJWTAuthentication): its one statement checks the account."""
    ticket = room_ticket(sale_starts_at=timezone.now() + timedelta(minutes=5))
    carol = make_user("carol")
    token = access_token(carol)
    users = type(carol).objects.filter(pk=carol.pk)
    if change == "deactivated":
        users.update(is_active=False)
    elif change == "password_changed":
        users.update(password_version=F("password_version") + 1)
    else:
        users.delete()

    joined = _call(FastTicketWSGIHandler(), "POST", queue_url(ticket.pk), token=token)
    # What every other endpoint answers this token: the user is loaded and checked.
    me = _call(FastTicketWSGIHandler(), "GET", "/api/v1/auth/me/", token=token)

    assert joined["status"].startswith("401"), joined
    assert json.loads(joined["body"]) == json.loads(me["body"])
    assert me["status"].startswith("401")
    assert sum(queue_stats(ticket=ticket).values()) == 0, "a refused join took a place"
