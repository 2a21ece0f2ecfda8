"""The waiting room's crowd after the opening: each user follows `poll_after_seconds` and books when admitted.

    python -m bench.crowd CONFIG.json      # started by the runner (bench/waiting_room.py)

One process, one asyncio loop, at most `connections` requests in flight: a dispatcher keeps every
user's next ask in a heap by due time and hands due users to the connections; a user with nothing
due holds no connection (sync gunicorn workers would wait for the request of an idle connection).
Each user carries on from its join answer (wrk's trace: when, and its poll_after_seconds) as if
it had asked every poll_after_seconds since, and is then a small state machine:

- ask (GET .../queue/): `waiting` -> ask again after `poll_after_seconds`; `admitted` -> book at
  once (the admission was granted at its `admitted_until` less `admission_seconds`: the summary
  keeps when, and how long after it the user learned it); `sold_out`, `booked`, `expired`, `closed` -> done;
- book (POST .../reserve/): 201 -> done (a seat); 503 -> again after Retry-After; anything else ->
  done, counted as an admitted user who did not get a seat (API.md: an admitted user who books in
  time gets one);
- a 503 or a connection error on an ask -> ask again after Retry-After (1 s when none); a 404
  (no place) -> done.

A request opens its own connection and sends `Connection: close` (what sync workers do anyway);
its latency runs from the connect to the last byte of the answer. Times that other processes
compare with are wall-clock (time.time()); latencies are monotonic. It writes one JSON summary and
stops when every user is done or at the deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import math
import random
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

STATUS = re.compile(rb'"status"\s*:\s*"(\w+)"')
CODE = re.compile(rb'"code"\s*:\s*"(\w+)"')
POLL_AFTER = re.compile(rb'"poll_after_seconds"\s*:\s*(\d+)')
RETRY_AFTER = re.compile(rb"\r\nretry-after:\s*(\d+)", re.IGNORECASE)
ADMITTED_UNTIL = re.compile(rb'"admitted_until"\s*:\s*"([^"]+)"')


@dataclass
class Tally:
    """What the crowd saw, aggregated as it goes (the raw requests would be hundreds of thousands)."""

    start: float
    asks: Counter = field(default_factory=Counter)  # "200 waiting", "503", "error"...
    books: Counter = field(default_factory=Counter)  # "201", "409 sold_out"...
    ask_ms: list[float] = field(default_factory=list)
    book_ms: list[float] = field(default_factory=list)
    asks_per_second: Counter = field(default_factory=Counter)  # second since start -> asks sent
    seats_per_second: Counter = field(default_factory=Counter)
    sold_out_per_second: Counter = field(default_factory=Counter)  # users who learned sold_out
    admitted: int = 0
    admitted_refused: Counter = field(default_factory=Counter)  # final non-201 answers to admitted users
    admitted_retries: int = 0  # 503 answers to admitted users' bookings (retried)
    first_admitted_at: float | None = None
    # When each admission was granted (its admitted_until less admission_seconds) and how long
    # after that its user asked and learned it.
    admissions: list[float] = field(default_factory=list)
    learned_after: list[float] = field(default_factory=list)
    last_seat_at: float | None = None
    last_sold_out_at: float | None = None
    ended: Counter = field(default_factory=Counter)  # how each user's story ended

    def second(self, at: float) -> int:
        return int(at - self.start)


async def request(host: str, port: int, head: bytes) -> tuple[int, bytes, bytes]:
    """Send one request on a new connection; return (status, headers, body)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(head)
        raw = await reader.read(-1)
    finally:
        writer.close()
    headers, _, body = raw.partition(b"\r\n\r\n")
    return int(headers[9:12]), headers, body


class Crowd:
    def __init__(self, config: dict) -> None:
        self.host, self.port = config["host"], int(config["port"])
        ticket = config["ticket"]
        self.ask_path = f"/api/v1/tickets/{ticket}/queue/".encode()
        self.book_path = f"/api/v1/tickets/{ticket}/reserve/".encode()
        with open(config["tokens"]) as lines:
            self.tokens = [next(lines).strip().encode() for _ in range(int(config["users"]))]
        self.connections = int(config["connections"])
        self.admission_seconds = float(config["admission_seconds"])
        self.deadline = time.monotonic() + float(config["deadline_seconds"])
        self.tally = Tally(start=time.time())
        self.left = len(self.tokens)
        self.due: list[tuple[float, int]] = []
        now = time.monotonic()
        # Each user carries on as if it had asked every poll_after_seconds since its join answer
        # (CLOCK_MONOTONIC ms from wrk's trace, the clock of time.monotonic()).
        rng = random.Random(1)
        for user, (answered_ms, poll_after) in enumerate(config["schedule"]):
            period = max(1, int(poll_after))
            if answered_ms <= 0:
                due = now + rng.uniform(0, 1)
            else:
                answered = answered_ms / 1000
                due = answered + period * max(1, math.ceil((now - answered) / period))
            heapq.heappush(self.due, (due, user))
        self.ready: asyncio.Queue[int] = asyncio.Queue()
        self.woken = asyncio.Event()

    def _head(self, method: bytes, path: bytes, user: int) -> bytes:
        return b"".join(
            (
                method,
                b" ",
                path,
                b" HTTP/1.1\r\nHost: ",
                f"{self.host}:{self.port}".encode(),
                b"\r\nAuthorization: Bearer ",
                self.tokens[user],
                b"\r\nConnection: close\r\n",
                b"Content-Length: 0\r\n\r\n" if method == b"POST" else b"\r\n",
            )
        )

    def later(self, user: int, seconds: float) -> None:
        at = time.monotonic() + seconds
        if not self.due or at < self.due[0][0]:
            self.woken.set()
        heapq.heappush(self.due, (at, user))

    def done(self, user: int, how: str) -> None:
        self.left -= 1
        self.tally.ended[how] += 1
        if self.left == 0:
            self.woken.set()

    async def dispatch(self) -> None:
        """Hand each user to the connections when its ask is due."""
        while self.left and time.monotonic() < self.deadline:
            now = time.monotonic()
            while self.due and self.due[0][0] <= now:
                self.ready.put_nowait(heapq.heappop(self.due)[1])
            self.woken.clear()
            wait = min(self.due[0][0] - now if self.due else 1.0, self.deadline - now, 1.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.woken.wait(), timeout=max(wait, 0.0005))

    async def connection(self) -> None:
        while True:
            user = await self.ready.get()
            try:
                await self.ask(user)
            except Exception as exc:  # a load generator must go on; the run is judged on the counts
                self.tally.asks[f"error {type(exc).__name__}"] += 1
                self.later(user, 1.0)

    async def _send(self, method: bytes, path: bytes, user: int) -> tuple[int, bytes, bytes, float] | None:
        began = time.monotonic()
        try:
            status, headers, body = await request(self.host, self.port, self._head(method, path, user))
        except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
            (self.tally.asks if method == b"GET" else self.tally.books)[f"error {type(exc).__name__}"] += 1
            return None
        return status, headers, body, (time.monotonic() - began) * 1000

    async def ask(self, user: int) -> None:
        t = self.tally
        t.asks_per_second[t.second(time.time())] += 1
        sent = await self._send(b"GET", self.ask_path, user)
        if sent is None:
            self.later(user, 1.0)
            return
        status, headers, body, ms = sent
        t.ask_ms.append(ms)
        found = STATUS.search(body) if status == 200 else CODE.search(body)
        place = found.group(1).decode() if found else ""
        t.asks[f"{status} {place}".strip()] += 1
        if status == 404:
            self.done(user, "no place (404)")
            return
        if status != 200:
            # 503 (Retry-After), or worse: ask again, as a client would.
            self.later(user, _retry_after(headers))
            return
        if place == "waiting":
            poll = POLL_AFTER.search(body)
            self.later(user, int(poll.group(1)) if poll else 1)
        elif place == "admitted":
            t.admitted += 1
            now = time.time()
            t.first_admitted_at = now if t.first_admitted_at is None else min(t.first_admitted_at, now)
            until = ADMITTED_UNTIL.search(body)
            if until:
                granted = _epoch(until.group(1).decode()) - self.admission_seconds
                t.admissions.append(granted)
                t.learned_after.append((now - granted) * 1000)
            await self.book(user)
        elif place == "sold_out":
            now = time.time()
            t.sold_out_per_second[t.second(now)] += 1
            t.last_sold_out_at = now
            self.done(user, "sold_out")
        else:
            self.done(user, place or "unreadable place")

    async def book(self, user: int) -> None:
        t = self.tally
        while True:
            sent = await self._send(b"POST", self.book_path, user)
            if sent is None:
                t.admitted_retries += 1
                await asyncio.sleep(1.0)
                continue
            status, headers, body, ms = sent
            t.book_ms.append(ms)
            code = CODE.search(body)
            answer = f"{status} {code.group(1).decode() if code and status != 201 else ''}".strip()
            t.books[answer] += 1
            if status == 503 and time.monotonic() < self.deadline:
                t.admitted_retries += 1
                await asyncio.sleep(_retry_after(headers))
                continue
            break
        now = time.time()
        if status == 201:
            t.seats_per_second[t.second(now)] += 1
            t.last_seat_at = now if t.last_seat_at is None else max(t.last_seat_at, now)
            self.done(user, "booked")
        else:
            t.admitted_refused[answer] += 1
            self.done(user, f"admitted, then {answer}")

    async def run(self) -> dict:
        workers = [asyncio.create_task(self.connection()) for _ in range(self.connections)]
        await self.dispatch()
        # Every user is done (nothing in flight), or the deadline passed (the rest count as unfinished).
        for w in workers:
            w.cancel()
        return self.summary()

    def summary(self) -> dict:
        t = self.tally
        return {
            "start": t.start,
            "end": time.time(),
            "users": len(self.tokens),
            "unfinished": self.left,
            "asks": dict(t.asks),
            "books": dict(t.books),
            "ask_ms": _percentiles(t.ask_ms),
            "book_ms": _percentiles(t.book_ms),
            "asks_per_second": _series(t.asks_per_second),
            "seats_per_second": _series(t.seats_per_second),
            "sold_out_per_second": _series(t.sold_out_per_second),
            "admitted": t.admitted,
            "admitted_refused": dict(t.admitted_refused),
            "admitted_retries": t.admitted_retries,
            "first_admitted_at": t.first_admitted_at,
            "first_admission": min(t.admissions, default=None),
            "last_admission": max(t.admissions, default=None),
            "learned_after_ms": _percentiles(t.learned_after),
            "last_seat_at": t.last_seat_at,
            "last_sold_out_at": t.last_sold_out_at,
            "ended": {k: v for k, v in t.ended.items() if v},
        }


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _retry_after(headers: bytes) -> float:
    found = RETRY_AFTER.search(headers)
    return float(found.group(1)) if found else 1.0


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0, "n": 0}
    pick = {p: ordered[max(0, -(-p * len(ordered) // 100) - 1)] for p in (50, 95, 99)}
    return {"p50": pick[50], "p95": pick[95], "p99": pick[99], "max": ordered[-1], "n": len(ordered)}


def _series(counts: Counter) -> list[int]:
    return [counts.get(second, 0) for second in range(max(counts, default=-1) + 1)]


def main(argv: list[str]) -> int:
    config = json.loads(Path(argv[0]).read_text())
    summary = asyncio.run(Crowd(config).run())
    Path(config["result"]).write_text(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
