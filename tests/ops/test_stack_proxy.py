"""The shipped topology's proxy (deploy/nginx/nginx.conf.template) through `Stack`: slow clients,
JSON refusals, the probes, and what reaches the app.

The slow-client attack of issue 14: connections that send their headers or body one byte every few
seconds, more of them than there are sync workers, reconnecting when cut off. Behind nginx, normal
requests keep being answered within a second; straight at gunicorn (the negative control), they wait.

The proxy's timeouts (408, 504) are seen with the same template rendered with shorter ones
(NGINX_CLIENT_TIMEOUT, NGINX_PROXY_READ_TIMEOUT) in front of upstreams that accept and never answer.
"""

import contextlib
import http.client
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.harness.ports import HOST, closed_port
from scripts.harness.stack import Nginx
from tests.concurrency.harness import reserve_path
from tests.factories import access_token, make_ticket
from tests.servers import row_lock_held, wait_until
from tests.stack import call, raw_exchange, running_stack

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

WORKERS = 3  # three processes of one sync worker each
ATTACKERS = 2 * WORKERS + 2
ATTACK_SECONDS = 14
BYTE_EVERY = 2.0
NORMAL_REQUEST_BUDGET = 1.0
BIG = b"a" * 9000
# Logins per client address a minute (THROTTLE_AUTH): the one throttle on in the module's stack, so
# that the address the app counts a client under shows. (Its BOOKING_LOCK_WAIT=1: a booking behind a
# held row lock has the app's 503 within a second.)
AUTH_RATE = 2
# The shortened timeouts, and how late nginx may act on one.
TIMEOUT_SECONDS = 1.0
TIMEOUT_SLACK = 1.5


@pytest.fixture(scope="module")
def stack(django_db_setup, django_db_blocker, tmp_path_factory):
    with (
        django_db_blocker.unblock(),
        running_stack(
            tmp_path_factory.mktemp("stack"), workers=1, THROTTLE_AUTH=f"{AUTH_RATE}/min", BOOKING_LOCK_WAIT="1"
        ) as stack,
    ):
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


@contextlib.contextmanager
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


# The proxy's timeouts, in front of upstreams that accept and never answer --------------------------


class SilentUpstream:
    """A TCP server that accepts, reads what it is sent and never answers; it records each request."""

    def __init__(self) -> None:
        self.listener = socket.create_server((HOST, 0))
        self.port = self.listener.getsockname()[1]
        self.requests: list[bytes] = []
        self._connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self._connections.append(connection)
            threading.Thread(target=self._read, args=(connection,), daemon=True).start()

    def _read(self, connection: socket.socket) -> None:
        """Record the request's head once it is whole, then read on (and drop) until nginx gives up."""
        received = b""
        try:
            while b"\r\n\r\n" not in received and (chunk := connection.recv(65536)):
                received += chunk
            if b"\r\n\r\n" in received:
                self.requests.append(received)
            while connection.recv(65536):
                pass
        except OSError:
            pass

    def close(self) -> None:
        # shutdown() wakes the threads blocked in accept() and recv(); close() alone would not.
        for sock in [self.listener, *self._connections]:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._thread.join(timeout=5)


@contextlib.contextmanager
def proxy_in_front_of(run_dir: Path, *upstreams: tuple[str, int]) -> Iterator[Nginx]:
    """nginx from the template with TIMEOUT_SECONDS for its client and proxy-read timeouts."""
    timeout = f"{int(TIMEOUT_SECONDS * 1000)}ms"
    with Nginx(
        log_path=run_dir / "nginx.log",
        run_dir=run_dir / "nginx",
        upstreams=list(upstreams),
        client_timeout=timeout,
        proxy_read_timeout=timeout,
    ) as nginx:
        yield nginx


@pytest.fixture
def silent_upstreams() -> Iterator[list[SilentUpstream]]:
    upstreams = [SilentUpstream(), SilentUpstream()]
    yield upstreams
    for upstream in upstreams:
        upstream.close()


def _until_closed(sock: socket.socket) -> tuple[bytes, float]:
    """Read until the peer closes or resets the connection; return what came and the seconds it took."""
    started = time.monotonic()
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received, time.monotonic() - started


@pytest.mark.parametrize(
    ("sent", "request_id"),
    [
        # The request line and some headers, never the blank line that ends them.
        (b"GET /api/v1/tickets/ HTTP/1.1\r\nHost: x\r\nX-Request-ID: slow-header\r\nX-Slow: a", "slow-header"),
        # Whole headers, then one byte of a 100-byte body.
        (
            b"POST /api/v1/auth/login/ HTTP/1.1\r\nHost: x\r\nX-Request-ID: slow-body\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
            "slow-body",
        ),
    ],
    ids=["header", "body"],
)
def test_a_client_that_stops_sending_is_cut_off_at_the_timeout_without_an_answer_and_reaches_no_process(
    tmp_path, silent_upstreams, sent, request_id
):
    """nginx answers no 408 (error_page 408 is never used): it logs one and closes, resetting the connection."""
    with proxy_in_front_of(tmp_path, *[(HOST, upstream.port) for upstream in silent_upstreams]) as nginx:
        with socket.create_connection((nginx.host, nginx.port), timeout=TIMEOUT_SECONDS + 5) as sock:
            sock.sendall(sent)
            received, seconds = _until_closed(sock)
        logged = wait_until(
            lambda: [line for line in nginx.log().splitlines() if f"request_id={request_id}" in line],
            timeout=5,
            what="nginx's access log line",
        )

    assert received == b""
    assert TIMEOUT_SECONDS - 0.1 <= seconds < TIMEOUT_SECONDS + TIMEOUT_SLACK, seconds
    assert '" 408 ' in logged[0], logged
    assert [upstream.requests for upstream in silent_upstreams] == [[], []]


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", f"/api/v1/tickets/{uuid.uuid4()}/reserve/"), ("GET", "/api/v1/tickets/")],
    ids=["booking", "read"],
)
def test_an_answer_not_begun_within_proxy_read_timeout_is_a_json_504_and_the_request_goes_to_no_other_process(
    tmp_path, silent_upstreams, method, path
):
    """A timeout is never passed on: not a booking (nginx's rule for a POST once sent), nor a read,
    which would otherwise wait out every process in turn."""
    with proxy_in_front_of(tmp_path, *[(HOST, upstream.port) for upstream in silent_upstreams]) as nginx:
        answer, headers, seconds = call(
            nginx.url, method, path, body=b"{}" if method == "POST" else None, timeout=TIMEOUT_SECONDS + 5
        )

    assert answer.status == 504
    assert headers["Content-Type"] == "application/json"
    assert answer.body == {
        "code": "unavailable",
        "detail": "The app server did not answer in time. Retry; a booking retried with the same "
        "Idempotency-Key is never made twice.",
    }
    assert answer.retry_after == "1"
    assert headers["X-Request-ID"]
    assert TIMEOUT_SECONDS - 0.1 <= seconds < TIMEOUT_SECONDS + TIMEOUT_SLACK, seconds
    reached = [request for upstream in silent_upstreams for request in upstream.requests]
    assert len(reached) == 1, reached
    assert reached[0].startswith(f"{method} {path} ".encode())


def test_with_every_process_down_the_proxy_answers_502_never_its_503_page(tmp_path):
    """Nothing in the template makes nginx answer 503 (no limit_req, limit_conn or backup server):
    every process down, and then none left to try ("no live upstreams"), are both its JSON 502."""
    with proxy_in_front_of(tmp_path, (HOST, closed_port()), (HOST, closed_port())) as nginx:
        refused, _, _ = call(nginx.url, "GET", "/api/v1/tickets/")
        none_left, headers, _ = call(nginx.url, "GET", "/api/v1/tickets/")
        log = nginx.log()

    assert (refused.status, refused.code, refused.retry_after) == (502, "unavailable", "1")
    assert (none_left.status, none_left.code, none_left.retry_after) == (502, "unavailable", "1")
    assert headers["Content-Type"] == "application/json"
    assert "no live upstreams" in log


def test_the_apps_own_503_passes_through_the_proxy_untouched(stack, alice):
    """proxy_intercept_errors stays off: the app's 503 `busy` keeps its body, not the proxy's page."""
    ticket = make_ticket(quantity=5)
    with row_lock_held(ticket.pk):
        answer, headers, _ = call(stack.url, "POST", reserve_path(ticket.pk), token=access_token(alice))

    assert (answer.status, answer.code) == (503, "busy"), answer
    assert answer.body["detail"] != "The service is unavailable. Retry shortly."
    assert answer.retry_after
    assert headers["Content-Type"] == "application/json"


# The client's address, as nginx forwards it ---------------------------------------------------------


def _login(base_url: str, *, forwarded_for: str | None = None, source: str = HOST) -> int:
    """POST a login for an account that does not exist (a 401, or a 429 once throttled) from `source`."""
    host, port = base_url.removeprefix("http://").split(":")
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if forwarded_for is not None:
        headers["X-Forwarded-For"] = forwarded_for
    # A new name each time: only the per-address bucket can refuse it, never the per-account one.
    body = json.dumps({"username": f"nobody-{uuid.uuid4().hex[:12]}", "password": "not-a-password"})
    connection = http.client.HTTPConnection(host, int(port), timeout=30, source_address=(source, 0))
    try:
        connection.request("POST", "/api/v1/auth/login/", body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


FORGED = ["203.0.113.7", "198.51.100.1, 203.0.113.8", "unknown", "203.0.113.9", "10.0.0.1, 10.0.0.2"]


def test_a_forged_x_forwarded_for_gets_no_fresh_login_bucket_behind_the_proxy(stack):
    statuses = [_login(stack.url, forwarded_for=forged) for forged in FORGED[: AUTH_RATE + 2]]
    # Another address as nginx sees it (loopback's 127.0.0.2) is another client, with its own bucket:
    # the app counts the entry nginx appended, not nginx's own address.
    other_client = _login(stack.url, forwarded_for=FORGED[0], source="127.0.0.2")

    assert statuses == [401] * AUTH_RATE + [429, 429]
    assert other_client == 401


def test_negative_control_straight_at_a_process_a_forged_x_forwarded_for_is_a_fresh_bucket_each_time(stack):
    """The processes take the last X-Forwarded-For entry (DJANGO_NUM_PROXIES=1): only nginx's makes it true."""
    statuses = [_login(stack.web[0].url, forwarded_for=forged) for forged in FORGED[: AUTH_RATE + 1]]

    assert statuses == [401] * (AUTH_RATE + 1)
