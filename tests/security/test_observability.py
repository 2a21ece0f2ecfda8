"""Operational visibility: a request id on every response and log line, and a guarded /metrics."""

import pytest
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from tests.factories import access_token, make_ticket
from tests.servers import GunicornServer, closed_port

OUTSIDE = "203.0.113.50"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/tickets/"),
        ("get", "/api/v1/tickets/00000000-0000-0000-0000-000000000000/"),
        ("get", "/api/v1/no-such-thing/"),
        ("get", "/api/v1/auth/me/"),
        ("post", "/api/v1/auth/login/"),
        ("get", "/healthz"),
    ],
)
def test_every_response_carries_a_request_id(api, db, method, path):
    response = getattr(api, method)(path, {}, format="json") if method == "post" else api.get(path)

    assert response.get("X-Request-ID")


def test_a_clients_request_id_is_echoed(api, db):
    response = api.get("/api/v1/tickets/", HTTP_X_REQUEST_ID="client-trace-4f2a")

    assert response["X-Request-ID"] == "client-trace-4f2a"


def test_each_request_gets_its_own_request_id(api, db):
    ids = {api.get("/api/v1/tickets/")["X-Request-ID"] for _ in range(3)}

    assert len(ids) == 3


@pytest.fixture(scope="module")
def server(django_db_setup, tmp_path_factory):
    # Redis down: a booking then logs the outage from inside the request, at WARNING.
    log_path = tmp_path_factory.mktemp("observability") / "gunicorn.log"
    with GunicornServer(log_path=log_path, REDIS_URL=f"redis://127.0.0.1:{closed_port()}/15") as server:
        yield server


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_log_lines_of_a_request_carry_its_request_id(server, alice):
    ticket = make_ticket()

    reply = server.request(
        "POST",
        f"/api/v1/tickets/{ticket.pk}/reserve/",
        token=access_token(alice),
        headers={"X-Request-ID": "trace-7c1e"},
    )
    lines = [line for line in server.log().splitlines() if "redis unavailable" in line]

    assert reply.status == 201
    assert reply.headers["X-Request-ID"] == "trace-7c1e"
    assert lines
    assert all("[trace-7c1e]" in line for line in lines)


@pytest.mark.slow
def test_readyz_carries_a_request_id(server):
    # Under gunicorn: in-process, /readyz's checker thread would keep a connection to the test database.
    assert server.request("GET", "/readyz").headers["X-Request-ID"]


def _metrics(client: APIClient, **extra) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.content
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def test_metrics_answer_a_scraper_on_localhost(api, db):
    samples = _metrics(api)

    assert any(name.startswith("fastticket_booking_lock_wait_seconds") for name, _ in samples)


def test_metrics_answer_staff_from_anywhere(staff):
    client = APIClient()
    client.force_login(staff)

    assert _metrics(client, REMOTE_ADDR=OUTSIDE)


def test_metrics_refuse_anonymous_callers_from_other_networks(api, db):
    response = api.get("/metrics", REMOTE_ADDR=OUTSIDE)

    assert response.status_code in (403, 404)
    assert b"fastticket_" not in response.content


def test_metrics_refuse_a_non_staff_user_from_other_networks(alice):
    session = APIClient()
    session.force_login(alice)
    bearer = APIClient()
    bearer.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token(alice)}")

    for client in (session, bearer):
        response = client.get("/metrics", REMOTE_ADDR=OUTSIDE)
        assert response.status_code in (403, 404)
        assert b"fastticket_" not in response.content


def test_the_booking_counter_grows_by_outcome(api, alice_api):
    ticket = make_ticket(quantity=1)
    created = ("fastticket_bookings_total", (("outcome", "created"),))
    already = ("fastticket_bookings_total", (("outcome", "already_reserved"),))
    waits = ("fastticket_booking_lock_wait_seconds_count", ())
    before = _metrics(api)

    assert alice_api.post(f"/api/v1/tickets/{ticket.pk}/reserve/").status_code == 201
    after_201 = _metrics(api)
    assert alice_api.post(f"/api/v1/tickets/{ticket.pk}/reserve/").status_code == 409
    after_409 = _metrics(api)

    assert after_201.get(created, 0) == before.get(created, 0) + 1
    assert after_201.get(already, 0) == before.get(already, 0)
    assert after_409.get(already, 0) == before.get(already, 0) + 1
    assert after_409.get(created, 0) == after_201.get(created, 0)
    assert after_201[waits] >= before.get(waits, 0) + 1
