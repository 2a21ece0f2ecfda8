"""Request bodies sent without a Content-Length (chunked), over real HTTP (API.md, Errors: 413)."""

import pytest

from tests.servers import GunicornServer

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

LOGIN = "/api/v1/auth/login/"


@pytest.fixture(scope="module")
def server(django_db_setup, tmp_path_factory):
    log = tmp_path_factory.mktemp("bodies") / "gunicorn.log"
    with GunicornServer(log_path=log, THROTTLE_AUTH="off") as running:
        yield running


def test_body_over_the_limit_answers_413_with_content_length(server, settings):
    padding = "x" * settings.API_MAX_BODY_BYTES

    reply = server.request("POST", LOGIN, json_body={"username": "nobody", "password": padding})

    assert reply.status == 413, reply.body
    assert set(reply.json()) == {"detail"}


def test_chunked_body_over_the_limit_answers_413(server, settings):
    padding = "x" * settings.API_MAX_BODY_BYTES

    reply = server.request("POST", LOGIN, json_body={"username": "nobody", "password": padding}, chunked=True)

    assert reply.status == 413, reply.body
    assert set(reply.json()) == {"detail"}


def test_chunked_json_body_is_read(server):
    reply = server.request(
        "POST", LOGIN, json_body={"username": "nobody", "password": "wrong-password-1"}, chunked=True
    )

    assert reply.status == 401, reply.body
