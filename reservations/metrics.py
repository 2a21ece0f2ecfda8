"""Prometheus metrics of the booking path (served at /metrics; the lock wait is tickets.locks's)."""

from prometheus_client import Counter

BOOKINGS = Counter(
    "fastticket_bookings_total",
    "Reserve calls by outcome: created, replayed, or the API.md error code.",
    ["outcome"],
)
CANCELLATIONS = Counter("fastticket_cancellations_total", "Reservations cancelled.")
