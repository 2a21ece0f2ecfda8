"""Broken chunked framing under gunicorn: a 400 JSON answer, nothing stored, no traceback in the log."""

import http.client
import json
import socket

import pytest

from accounts.models import User
from tests.servers import GunicornServer as Server

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SIGNUP_BODY = json.dumps(
    {"username": "chunky", "email": "chunky@example.com", "password": "quiet-harbour-lantern-7"}
).encode()


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


# Each one a signup body that would store a user if its framing were read as valid.
BROKEN_FRAMINGS = {
    "negative size": b"-5\r\nhello\r\n0\r\n\r\n",
    "size not hex": b"zz\r\n" + SIGNUP_BODY + b"\r\n0\r\n\r\n",
    "chunk without its CRLF": b"%x\r\n%sXX0\r\n\r\n" % (len(SIGNUP_BODY), SIGNUP_BODY),
    "size line with a bare LF": b"%x\n%s\r\n0\r\n\r\n" % (len(SIGNUP_BODY), SIGNUP_BODY),
    "bad trailer": _chunk(SIGNUP_BODY) + b"0\r\nno colon in this trailer\r\n\r\n",
    "trailer with a bare LF": _chunk(SIGNUP_BODY) + b"0\r\nX-Trailer: 1\n\r\n",
    "truncated in a chunk": b"%x\r\n%s" % (len(SIGNUP_BODY), SIGNUP_BODY[:20]),
    "truncated before the last chunk": _chunk(SIGNUP_BODY),
    "truncated in the trailers": _chunk(SIGNUP_BODY) + b"0\r\n",
    "huge size": b"ffffffffffffffffffff\r\n" + SIGNUP_BODY + b"\r\n0\r\n\r\n",
}


@pytest.fixture(scope="module")
def server(django_db_setup, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("chunked") / "gunicorn.log"
    with Server(log_path=log_path, THROTTLE_AUTH="off") as running:
        yield running


def _send_raw(port: int, body: bytes, path: str = "/api/v1/auth/signup/") -> tuple[int, dict[str, str], bytes]:
    """Send a chunked POST with exactly these body bytes, close our side, and read the whole answer."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Accept: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head + body)
        sock.shutdown(socket.SHUT_WR)
        response = http.client.HTTPResponse(sock, method="POST")
        response.begin()
        payload = response.read()
    return response.status, {name.lower(): value for name, value in response.getheaders()}, payload


@pytest.mark.parametrize("framing", list(BROKEN_FRAMINGS))
def test_a_broken_chunked_body_answers_400_json_and_stores_nothing(server, framing):
    log_before = len(server.log())

    status, headers, payload = _send_raw(server.port, BROKEN_FRAMINGS[framing])

    assert status == 400, payload
    assert headers["content-type"].startswith("application/json")
    assert json.loads(payload)["detail"]
    assert not User.objects.exists()
    new_log = server.log()[log_before:]
    assert "Traceback" not in new_log
    assert "Internal Server Error" not in new_log


def test_a_well_formed_chunked_body_is_still_read(server):
    status, _, payload = _send_raw(server.port, _chunk(SIGNUP_BODY[:30]) + _chunk(SIGNUP_BODY[30:]) + b"0\r\n\r\n")

    assert status == 201, payload
    assert User.objects.filter(username="chunky").exists()
