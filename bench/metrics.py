"""The booking engine's own figures, read from the server's /metrics before and after a scenario.

gunicorn runs with PROMETHEUS_MULTIPROC_DIR, so one GET /metrics adds up every worker
(prometheus_client's multiprocess mode); /metrics answers loopback without a proxy. Through the
stack each FastTicket process has its own directory: its /metrics is read straight from it (not
through nginx, which keeps /metrics off the proxy) and the processes are added up. The reading
after a scenario waits until the requests wrk left in flight are answered (`settled`), so that
they count in the scenario they belong to.

From reservations/metrics.py's docstring:
- the lock held per confirmed booking = lock_held_seconds_sum / batch_bookings_sum;
- the mean batch = batch_bookings_sum / batch_bookings_count (confirmed reservations per batch);
  batch_size_sum / batch_size_count is the same mean over every booking a batch took, refusals too.
"""

from __future__ import annotations

import time
import urllib.request
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

# The samples the report uses (histograms' _sum and _count, the bookings counter by outcome).
SERIES = (
    "fastticket_booking_lock_held_seconds_sum",
    "fastticket_booking_lock_held_seconds_count",
    "fastticket_booking_batch_bookings_sum",
    "fastticket_booking_batch_bookings_count",
    "fastticket_booking_batch_size_sum",
    "fastticket_booking_batch_size_count",
    "fastticket_booking_line_wait_seconds_sum",
    "fastticket_booking_line_wait_seconds_count",
)
OUTCOMES = "fastticket_bookings_total"


@dataclass(frozen=True)
class Snapshot:
    """The series of SERIES and the bookings by outcome, added up over the servers read."""

    values: dict[str, float] = field(default_factory=dict)
    outcomes: dict[str, float] = field(default_factory=dict)

    def __sub__(self, before: Snapshot) -> Snapshot:
        return Snapshot(
            {name: value - before.values.get(name, 0.0) for name, value in self.values.items()},
            {name: value - before.outcomes.get(name, 0.0) for name, value in self.outcomes.items()},
        )

    def __add__(self, other: Snapshot) -> Snapshot:
        names = set(self.values) | set(other.values)
        outcomes = set(self.outcomes) | set(other.outcomes)
        return Snapshot(
            {name: self.values.get(name, 0.0) + other.values.get(name, 0.0) for name in names},
            {name: self.outcomes.get(name, 0.0) + other.outcomes.get(name, 0.0) for name in outcomes},
        )


def parse(text: str) -> Snapshot:
    """Pick the booking series out of a Prometheus text exposition."""
    values = dict.fromkeys(SERIES, 0.0)
    outcomes: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in values:
                values[sample.name] += sample.value
            elif sample.name == OUTCOMES and "outcome" in sample.labels:
                outcomes[sample.labels["outcome"]] = outcomes.get(sample.labels["outcome"], 0.0) + sample.value
    return Snapshot(values, outcomes)


def read(base_urls: list[str] | str, timeout: float = 10.0) -> Snapshot:
    """GET /metrics of each server (straight, from loopback) and add them up."""
    total = Snapshot()
    for base in [base_urls] if isinstance(base_urls, str) else base_urls:
        with urllib.request.urlopen(f"{base}/metrics", timeout=timeout) as answer:
            total = total + parse(answer.read().decode())
    return total


def settled(base_urls: list[str] | str, *, interval: float = 0.25, timeout: float = 5.0) -> Snapshot:
    """Read /metrics until the reserve calls stop moving: wrk stops with requests in flight, which
    the server still answers (a booking may wait up to BOOKING_LOCK_WAIT) after the scenario ended."""
    deadline = time.monotonic() + timeout
    last = read(base_urls)
    while time.monotonic() < deadline:
        time.sleep(interval)
        now = read(base_urls)
        if now.outcomes == last.outcomes:
            return now
        last = now
    return last


@dataclass(frozen=True)
class Engine:
    """The booking engine's figures over one scenario (the difference of two snapshots)."""

    batches: int
    confirmed: int
    taken: int
    lock_held_seconds: float
    outcomes: dict[str, int]

    @classmethod
    def between(cls, before: Snapshot, after: Snapshot) -> Engine:
        d = (after - before).values
        return cls(
            batches=round(d["fastticket_booking_batch_bookings_count"]),
            confirmed=round(d["fastticket_booking_batch_bookings_sum"]),
            taken=round(d["fastticket_booking_batch_size_sum"]),
            lock_held_seconds=d["fastticket_booking_lock_held_seconds_sum"],
            outcomes={name: round(n) for name, n in (after - before).outcomes.items() if round(n)},
        )

    @property
    def lock_ms_per_booking(self) -> float | None:
        """Milliseconds the ticket's Redis lock was held per confirmed booking."""
        return self.lock_held_seconds * 1000 / self.confirmed if self.confirmed else None

    @property
    def mean_batch(self) -> float | None:
        """Confirmed reservations per batch (reservations/metrics.py's mean batch)."""
        return self.confirmed / self.batches if self.batches else None

    @property
    def mean_taken(self) -> float | None:
        """Bookings a batch took, refused ones too."""
        return self.taken / self.batches if self.batches else None
