"""Race harness: threads that start together, booking calls that retry 503s, and the guarantee checks."""

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from io import StringIO
from typing import Any, TypeVar

import psycopg
from django.core.management import call_command
from django.db import connection
from rest_framework.test import APIClient

from reservations.models import Reservation, ReservationStatus
from tests.servers import GunicornServer, database_url
from tickets.models import Ticket

T = TypeVar("T")

BARRIER_TIMEOUT = 120
RETRIES = 6


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    retry_after: str | None = None

    @property
    def code(self) -> str | None:
        return self.body.get("code") if isinstance(self.body, dict) else None


@dataclass
class Attempts:
    """Every answer one client got for one action, retries included; the last one counts."""

    answers: list[Answer] = field(default_factory=list)

    @property
    def final(self) -> Answer:
        return self.answers[-1]


def run_together(jobs: Sequence[Callable[[], T]], *, threads: int) -> list[T]:
    """Run the jobs from `threads` threads released at once by a barrier; return results in job order."""
    threads = min(threads, len(jobs))
    results: list[Any] = [None] * len(jobs)
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads, timeout=BARRIER_TIMEOUT)

    def worker(first: int) -> None:
        try:
            barrier.wait()
            for index in range(first, len(jobs), threads):
                results[index] = jobs[index]()
        except BaseException as exc:  # re-raised in the test's thread below
            errors.append(exc)
            barrier.abort()
        finally:
            connection.close()

    pool = [threading.Thread(target=worker, args=(n,), name=f"racer-{n}") for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=BARRIER_TIMEOUT * 2)
    assert not any(thread.is_alive() for thread in pool), "a racing thread never finished"
    if errors:
        raise errors[0]
    return results


@contextmanager
def in_background(fn: Callable[[], T]) -> Iterator[Callable[[], T]]:
    """Run fn in a thread (closing its DB connection); yield a function that joins it and returns its result."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:
            box["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=target, name="background")
    thread.start()

    def result() -> T:
        thread.join(timeout=BARRIER_TIMEOUT * 2)
        assert not thread.is_alive(), "the background thread never finished"
        if "error" in box:
            raise box["error"]
        return box["result"]

    try:
        yield result
    finally:
        thread.join(timeout=BARRIER_TIMEOUT * 2)


def with_retries(call: Callable[[], Answer], *, retries: int = RETRIES) -> Attempts:
    """Call until the answer is not a 503 with Retry-After, as a polite client would (shortened waits)."""
    attempts = Attempts()
    for attempt in range(retries):
        answer = call()
        attempts.answers.append(answer)
        if answer.status != 503 or answer.retry_after is None:
            break
        time.sleep(0.05 * (attempt + 1))
    return attempts


# In-process clients (DRF's APIClient) --------------------------------------------------------------

# Clients are pooled across threads and tests: each one loads the middleware once (WhiteNoise scans
# STATIC_ROOT then), and each is used by one thread at a time.
_clients: queue.SimpleQueue[APIClient] = queue.SimpleQueue()


@contextmanager
def _borrowed_client() -> Iterator[APIClient]:
    try:
        client = _clients.get_nowait()
    except queue.Empty:
        client = APIClient()
    try:
        yield client
    finally:
        _clients.put(client)


def _answer(response) -> Answer:
    body = response.json() if response.content else None
    return Answer(response.status_code, body, response.headers.get("Retry-After"))


def api_call(method: str, path: str, *, token: str, data: dict | None = None) -> Answer:
    """Send one API request through a client of the pool, authenticated by the token."""
    with _borrowed_client() as client:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        response = getattr(client, method)(path, data, format="json") if data else getattr(client, method)(path)
    return _answer(response)


def reserve_path(ticket_id) -> str:
    return f"/api/v1/tickets/{ticket_id}/reserve/"


def api_reserve(token: str, ticket_id) -> Answer:
    return api_call("post", reserve_path(ticket_id), token=token)


def api_book(user, token: str, *, ticket_id) -> Answer:
    """Reserve as the crowd member (user, token); the shape `sale` calls."""
    return api_reserve(token, ticket_id)


def api_cancel(token: str, reservation_id) -> Answer:
    return api_call("post", f"/api/v1/reservations/{reservation_id}/cancel/", token=token)


# Over HTTP (gunicorn) -------------------------------------------------------------------------------


def http_call(
    server: GunicornServer, method: str, path: str, *, token: str | None = None, timeout: float = 60
) -> Answer:
    """Send one request to a running server and return its answer (4xx and 5xx included)."""
    reply = server.request(method, path, token=token, headers={"Content-Type": "application/json"}, timeout=timeout)
    try:
        body = reply.json() if reply.body else None
    except ValueError:
        body = reply.body.decode(errors="replace")
    return Answer(reply.status, body, reply.headers.get("Retry-After"))


def http_reserve(server: GunicornServer, token: str, ticket_id) -> Answer:
    return http_call(server, "POST", reserve_path(ticket_id), token=token)


def http_book(server: GunicornServer, user, token: str, *, ticket_id) -> Answer:
    """Reserve over HTTP as the crowd member (user, token); with the server bound, the shape `sale` calls."""
    return http_reserve(server, token, ticket_id)


# The guarantees ------------------------------------------------------------------------------------


def assert_no_server_errors(attempts: Sequence[Attempts]) -> None:
    """Assert API.md's rule: a 5xx other than a 503 busy/unavailable with Retry-After is a bug."""
    bad = [
        answer
        for attempt in attempts
        for answer in attempt.answers
        if answer.status >= 500
        and not (answer.status == 503 and answer.retry_after and answer.code in {"busy", "unavailable"})
    ]
    assert not bad, f"{len(bad)} server errors, e.g. {bad[:3]}"


def sale(book, crowd: list[tuple], *, threads: int) -> list[Attempts]:
    """Let every user of the crowd try once (retrying 503s), all threads released together."""
    return run_together([partial(with_retries, partial(book, user, token)) for user, token in crowd], threads=threads)


def assert_sold_exactly(ticket: Ticket, crowd: list[tuple], attempts: list[Attempts], *, seats: int) -> None:
    """Assert the three guarantees after a sale of `seats` seats to a crowd of different users."""
    assert_no_server_errors(attempts)
    created = [attempt.final for attempt in attempts if attempt.final.status == 201]
    refused = [attempt.final for attempt in attempts if attempt.final.status != 201]
    assert len(created) == seats, f"{len(created)} x 201 for {seats} seats"
    for answer in refused:
        assert (answer.status, answer.code) in {(409, "sold_out"), (503, "busy")}, answer
    confirmed = Reservation.objects.filter(ticket=ticket, status=ReservationStatus.CONFIRMED)
    assert {str(pk) for pk in confirmed.values_list("id", flat=True)} == {answer.body["id"] for answer in created}
    winners = {str(user.pk) for (user, _), attempt in zip(crowd, attempts, strict=True) if attempt.final.status == 201}
    assert {str(pk) for pk in confirmed.values_list("user_id", flat=True)} == winners
    assert Reservation.objects.filter(ticket=ticket).count() == seats, "a refused request stored something"
    assert issued_count(ticket.pk) == seats == confirmed.count()
    check_invariants()


def check_invariants() -> str:
    """Run the check_invariants command (CommandError on any violation) and return its report."""
    out = StringIO()
    call_command("check_invariants", stdout=out)
    return out.getvalue()


def confirmed_count(ticket_id) -> int:
    return Reservation.objects.filter(ticket_id=ticket_id, status=ReservationStatus.CONFIRMED).count()


def issued_count(ticket_id) -> int:
    return Ticket.objects.values_list("issued_count", flat=True).get(pk=ticket_id)


# PostgreSQL beside the application's connections ---------------------------------------------------


def backend_alive(pid: int) -> bool:
    with psycopg.connect(database_url(), autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone() is not None
