"""The shipped topology's proxy (deploy/nginx/nginx.conf.template) through `Stack`: slow clients,
JSON refusals, the probes, and what reaches the app.

The slow-client attack of issue 14: connections that send their headers or body one byte every few
seconds, more of them than there are sync workers, reconnecting when cut off. Behind nginx, normal
requests keep being answered within a second; straight at gunicorn (the negative control), they wait.
"""

import socket
import threading
import time
from contextlib import contextmanager

import pytest

from tests.factories import make_ticket
from tests.stack import call, raw_exchange, running_stack

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

WORKERS = 3  # three processes of one sync worker each
ATTACKERS = 2 * WORKERS + 2
ATTACK_SECONDS = 14
BYTE_EVERY = 2.0
NORMAL_REQUEST_BUDGET = 1.0
BIG = b"a" * 9000


@pytest.fixture(scope="module")
def stack(django_db_setup, django_db_blocker, tmp_path_factory):
    with django_db_blocker.unblock(), running_stack(tmp_path_factory.mktemp("stack"), workers=1) as stack:
        yield stack


def _slow_client(host: str, port: int, stop: threading.Event, *, body: bool) -> None:
    """Send a request one byte every BYTE_EVERY seconds; reconnect when cut off, until stopped."""
    if body:
        request = b"POST /api/v1/auth/login/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        request += b"Content-Length: 4000\r\n\r\n" + b"{" * 4000
    else:
        request = b"GET /api/v1/tickets/ HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 4000 + b"\r\n\r\n"
    while not stop.is_set():
        try:
            with socket.create_connection((host, port), timeout=BYTE_EVERY * 3) as sock:
                if body:
                    # The headers at once, then the body byte by byte.
                    head_end = request.index(b"\r\n\r\n") + 4
                    sock.sendall(request[:head_end])
                    position = head_end
                else:
                    position = 0
                while not stop.is_set() and position < len(request):
                    sock.sendall(request[position : position + 1])
                    position += 1
                    stop.wait(BYTE_EVERY)
        except OSError:
            stop.wait(0.1)


@contextmanager
def slow_clients(base_url: str, count: int):
    """Run `count` slow clients (headers and bodies, half each) against base_url for the block."""
    host, port = base_url.removeprefix("http://").split(":")
    stop = threading.Event()
    threads = [
        threading.Thread(target=_slow_client, args=(host, int(port), stop), kwargs={"body": n % 2 == 1}, daemon=True)
        for n in range(count)
    ]
    for thread in threads:
        thread.start()
    try:
        # Let every attacker hold its connection first.
        time.sleep(1.5)
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=BYTE_EVERY * 4)


def _normal_requests(base_url: str, seconds: float) -> list[float]:
    """GET the catalogue every 0.5 s for `seconds`; return how long each took (a timeout counts 5 s)."""
    took = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            answer, _, elapsed = call(base_url, "GET", "/api/v1/tickets/", timeout=5)
            took.append(elapsed if answer.status == 200 else 5.0)
        except OSError:
            took.append(5.0)
        time.sleep(0.5)
    return took


def test_slow_clients_leave_normal_requests_answered_within_a_second_behind_the_proxy(stack):
    with slow_clients(stack.url, ATTACKERS):
        took = _normal_requests(stack.url, ATTACK_SECONDS)

    assert len(took) >= 10
    assert max(took) < NORMAL_REQUEST_BUDGET, took


def test_negative_control_the_same_attack_straight_at_gunicorn_stalls_normal_requests(stack):
    direct = stack.web[0]
    with slow_clients(direct.url, ATTACKERS):
        took = _normal_requests(direct.url, 6)

    assert max(took) >= NORMAL_REQUEST_BUDGET, took


@pytest.mark.parametrize(
    ("request_bytes", "status", "detail"),
    [
        (b"NOT A REQUEST\r\n\r\n", 400, "Malformed request."),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "The request URI is too long."),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + BIG + b"\r\n\r\n", 431, "The request headers are too large."),
        (
            b"POST /api/v1/auth/login/ HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\n\r\n",
            413,
            "The request body is too large (limit 65536 bytes).",
        ),
    ],
    ids=["400", "414", "431", "413"],
)
def test_what_nginx_refuses_is_a_json_object(stack, request_bytes, status, detail):
    got, headers, body = raw_exchange(stack.url, request_bytes)

    assert got == status
    assert headers["Content-Type"] == "application/json"
    assert body.decode() == f'{{"detail": "{detail}"}}'
    assert headers["X-Request-ID"]


def test_the_probes_and_the_apps_own_errors_pass_through(stack):
    healthz, _, _ = call(stack.url, "GET", "/healthz")
    readyz, _, _ = call(stack.url, "GET", "/readyz")
    missing, headers, _ = call(stack.url, "GET", "/api/v1/tickets/not-a-ticket/", headers={"X-Request-ID": "trace-1"})

    assert (healthz.status, healthz.body) == (200, {"status": "ok"})
    assert (readyz.status, readyz.body) == (200, {"database": "ok", "redis": "ok"})
    assert missing.status == 404
    assert "detail" in missing.body
    assert headers["X-Request-ID"] == "trace-1"


def test_metrics_are_not_served_through_the_proxy(stack):
    answer, _, _ = call(stack.url, "GET", "/metrics")

    assert answer.status == 403
    assert answer.body == {"detail": "You do not have permission to perform this action."}


def test_the_apps_absolute_links_name_the_proxys_host_and_port(stack):
    make_ticket(title="First")
    make_ticket(title="Second")

    page, _, _ = call(stack.url, "GET", "/api/v1/tickets/?page_size=1")

    assert page.status == 200
    assert page.body["next"].startswith(f"{stack.url}/api/v1/tickets/"), page.body["next"]


def test_when_every_process_is_gone_the_proxy_answers_502_as_json_with_retry_after(tmp_path):
    with running_stack(tmp_path / "stack", web_processes=2, workers=1) as stack:
        for web in stack.web:
            web.kill()
        answer, headers, _ = call(stack.url, "POST", "/api/v1/auth/login/", body=b"{}")

    assert answer.status == 502
    assert answer.code == "unavailable"
    assert answer.retry_after == "1"
    assert headers["Content-Type"] == "application/json"
