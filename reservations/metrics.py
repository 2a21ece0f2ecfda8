"""Prometheus metrics of the booking path (served at /metrics)."""

from prometheus_client import Counter, Histogram

BOOKINGS = Counter(
    "fastticket_bookings_total",
    "Reserve calls by outcome: created, replayed, or the API.md error code.",
    ["outcome"],
)
CANCELLATIONS = Counter("fastticket_cancellations_total", "Reservations cancelled.")
LOCK_WAIT = Histogram(
    "fastticket_booking_lock_wait_seconds",
    "Time spent waiting for a ticket's Redis booking lock.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
