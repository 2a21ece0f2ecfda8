"""Prometheus metrics of the booking path (served at /metrics; cancels' lock wait is tickets.locks's).

The benchmark reads them too: the lock held per confirmed booking is
`fastticket_booking_lock_held_seconds_sum / fastticket_booking_batch_bookings_sum`, the mean batch
`fastticket_booking_batch_bookings_sum / fastticket_booking_batch_bookings_count`.
"""

from prometheus_client import Counter, Histogram

BOOKINGS = Counter(
    "fastticket_bookings_total",
    "Reserve calls by outcome: created, replayed, or the API.md error code.",
    ["outcome"],
)
CANCELLATIONS = Counter("fastticket_cancellations_total", "Reservations cancelled.")
LINE_WAIT = Histogram(
    "fastticket_booking_line_wait_seconds",
    "Time a booking waited in its ticket's line, until its answer came or it took the lock.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
LOCK_HELD = Histogram(
    "fastticket_booking_lock_held_seconds",
    "Time a lock holder held the ticket's lock for one batch: from taking it to answering it.",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
)
BATCH_SIZE = Histogram(
    "fastticket_booking_batch_size",
    "Bookings a lock holder booked together in one transaction.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
BATCH_BOOKINGS = Histogram(
    "fastticket_booking_batch_bookings",
    "Confirmed reservations a batch made (0 for an all-refused batch).",
    buckets=(0, 1, 2, 4, 8, 16, 32, 64, 128, 256),
)
