"""Operational visibility: a request id on every response and log line, and a guarded /metrics."""

import re

import pytest
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from tests.factories import access_token, make_ticket
from tests.ops.servers import needs_no_local_env_file, run_python
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
    assert any(name.startswith("fastticket_booking_line_wait_seconds") for name, _ in samples)


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
    waits = ("fastticket_booking_line_wait_seconds_count", ())
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


def _grown(before: dict, after: dict, name: str) -> dict[tuple, float]:
    """The label sets of `name` whose value grew between two scrapes, with how much each grew."""
    grown = {}
    for (sample, labels), value in after.items():
        if sample == name and value != before.get((sample, labels), 0):
            grown[labels] = value - before.get((sample, labels), 0)
    return grown


def test_each_view_method_and_status_is_counted_under_its_own_labels(api, db):
    """The after-middleware keeps each labelled child it made: a kept child must never count other labels."""
    # One client, so every request goes through one middleware chain and reuses the children it kept.
    ticket = make_ticket()
    missing = "00000000-0000-0000-0000-000000000000"
    before = _metrics(api)

    assert api.get("/api/v1/tickets/").status_code == 200
    assert api.get("/api/v1/tickets/").status_code == 200
    assert api.get(f"/api/v1/tickets/{missing}/").status_code == 404
    assert api.get(f"/api/v1/tickets/{ticket.pk}/").status_code == 200
    assert api.post("/api/v1/auth/login/", {}, format="json").status_code == 400
    after = _metrics(api)

    by_status_view_method = _grown(before, after, "django_http_responses_total_by_status_view_method_total")
    assert by_status_view_method == {
        (("method", "GET"), ("status", "200"), ("view", "ticket-list")): 2,
        (("method", "GET"), ("status", "404"), ("view", "ticket-detail")): 1,
        (("method", "GET"), ("status", "200"), ("view", "ticket-detail")): 1,
        (("method", "POST"), ("status", "400"), ("view", "login")): 1,
        # The first scrape: its answer is counted after it was rendered.
        (("method", "GET"), ("status", "200"), ("view", "metrics")): 1,
    }
    assert _grown(before, after, "django_http_requests_total_by_view_transport_method_total") == {
        (("method", "GET"), ("transport", "http"), ("view", "ticket-list")): 2,
        (("method", "GET"), ("transport", "http"), ("view", "ticket-detail")): 2,
        (("method", "POST"), ("transport", "http"), ("view", "login")): 1,
        # The second scrape: its request is counted before its view runs.
        (("method", "GET"), ("transport", "http"), ("view", "metrics")): 1,
    }
    assert _grown(before, after, "django_http_responses_total_by_status_total") == {
        (("status", "200"),): 4,
        (("status", "404"),): 1,
        (("status", "400"),): 1,
    }
    assert _grown(before, after, "django_http_requests_latency_seconds_by_view_method_count") == {
        (("method", "GET"), ("view", "ticket-list")): 2,
        (("method", "GET"), ("view", "ticket-detail")): 2,
        (("method", "POST"), ("view", "login")): 1,
        (("method", "GET"), ("view", "metrics")): 1,
    }


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"])
def test_metrics_answer_only_get_with_a_json_405_even_on_localhost(api, staff, method):
    for client in (api, _staff_session(staff)):
        response = client.generic(method, "/metrics")

        assert response.status_code == 405, response.content
        assert response["Content-Type"].startswith("application/json")
        assert response["Allow"] == "GET, HEAD"
        assert b"fastticket_" not in response.content


def _staff_session(staff) -> APIClient:
    client = APIClient()
    client.force_login(staff)
    return client


@pytest.mark.parametrize(
    "header",
    [{"HTTP_X_FORWARDED_FOR": "203.0.113.9"}, {"HTTP_FORWARDED": "for=203.0.113.9"}, {"HTTP_X_REAL_IP": "1.2.3.4"}],
)
def test_metrics_do_not_trust_a_loopback_address_that_forwards_for_someone_else(api, db, header):
    # A proxy on the same host connects from loopback: its requests name their client.
    response = api.get("/metrics", **header)

    assert response.status_code == 404
    assert b"fastticket_" not in response.content


def test_metrics_answer_staff_through_a_proxy(staff):
    assert _metrics(_staff_session(staff), HTTP_X_FORWARDED_FOR="203.0.113.9")


PRINT_METRICS_NETWORKS = """
import django
django.setup()
from django.conf import settings
print(sorted(str(network) for network in settings.METRICS_ALLOWED_NETWORKS))
"""


@pytest.mark.slow
@needs_no_local_env_file
@pytest.mark.parametrize(
    ("env", "networks"),
    [
        ({"DJANGO_NUM_PROXIES": None, "METRICS_ALLOWED_CIDRS": None}, ["127.0.0.1/32", "::1/128"]),
        ({"DJANGO_NUM_PROXIES": "0", "METRICS_ALLOWED_CIDRS": None}, ["127.0.0.1/32", "::1/128"]),
        ({"DJANGO_NUM_PROXIES": "1", "METRICS_ALLOWED_CIDRS": None}, []),
        ({"DJANGO_NUM_PROXIES": "1", "METRICS_ALLOWED_CIDRS": "10.1.0.0/16"}, ["10.1.0.0/16"]),
        ({"DJANGO_NUM_PROXIES": None, "METRICS_ALLOWED_CIDRS": ""}, []),
    ],
)
def test_metrics_trust_loopback_by_default_only_without_a_proxy_in_front(env, networks):
    result = run_python(PRINT_METRICS_NETWORKS, **env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == repr(networks)


@pytest.mark.parametrize(
    "request_id",
    [
        "x" * 8192,
        "x" * 129,
        "has space",
        "tab\there",
        "new\nline",
        "caf\u00e9",
        "",
        "[fake] ERROR",
    ],
)
def test_a_request_id_that_is_too_long_or_not_printable_is_replaced(api, db, request_id):
    response = api.get("/api/v1/tickets/", HTTP_X_REQUEST_ID=request_id)

    sent = response["X-Request-ID"]
    assert sent != request_id
    assert re.fullmatch(r"[0-9a-f]{32}", sent), sent


@pytest.mark.parametrize(
    "request_id",
    ["x" * 128, "5f0c6a3e-0a34-4d7e-9a57-1f0e3b2c9d10", "Root=1-67891233-abcdef;Parent=53995c3f", "a.b:c/d+e@f_g"],
)
def test_a_bounded_printable_request_id_is_echoed(api, db, request_id):
    assert api.get("/api/v1/tickets/", HTTP_X_REQUEST_ID=request_id)["X-Request-ID"] == request_id


def test_a_probe_with_a_bad_request_id_gets_a_fresh_one(api):
    response = api.get("/healthz", HTTP_X_REQUEST_ID="y" * 5000)

    assert len(response["X-Request-ID"]) == 32
