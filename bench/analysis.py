"""Figures derived from the flash sale's per-request trace: sell-out time, latency, seat order, time series."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from bench.load import Attempt, Result

STATUS_GROUPS = ("201", "409", "503", "other")


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile of values (0 for none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def group(status: int) -> str:
    return str(status) if status in (201, 409, 503) else "other"


@dataclass
class FlashSale:
    users: int
    seats: int
    connections: int
    attempts: int
    counts: dict[str, int]
    sell_out_seconds: float | None
    last_answer_seconds: float
    latency_ms: dict[str, float]
    retried_users: int
    bin_seconds: float
    order: SeatOrder | None = None
    series_t: list[float] = field(default_factory=list)
    series_counts: dict[str, list[int]] = field(default_factory=dict)
    series_latency: dict[str, list[float]] = field(default_factory=dict)
    cumulative_201: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class SeatOrder:
    """Seats against arrival (when wrk sent the request): how many went to a later arrival than a
    request that was told sold_out."""

    sold_out_answers: int
    # Seats whose request was sent after the first request that got sold_out was sent.
    seats_after_a_sold_out: int
    # Requests told sold_out that were sent before the last seat's request was sent.
    sold_outs_before_a_seat: int
    # How much later than the first sold_out's request the latest such seat's request was sent.
    latest_lead_ms: float


def seat_order(trace: list[Attempt]) -> SeatOrder:
    """Compare the send times of the requests that got a seat with those told sold_out."""
    seats = [t.sent for t in trace if t.status == 201]
    sold_out = [t.sent for t in trace if t.status == 409 and t.info == "sold_out"]
    if not seats or not sold_out:
        return SeatOrder(len(sold_out), 0, 0, 0.0)
    first_sold_out, last_seat = min(sold_out), max(seats)
    later = [sent for sent in seats if sent > first_sold_out]
    return SeatOrder(
        sold_out_answers=len(sold_out),
        seats_after_a_sold_out=len(later),
        sold_outs_before_a_seat=sum(1 for sent in sold_out if sent < last_seat),
        latest_lead_ms=max(later, default=first_sold_out) - first_sold_out,
    )


def _bin_width(span: float) -> float:
    for width in (0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0):
        if span / width <= 80:
            return width
    return 10.0


def latency_percentiles(trace: list[Attempt]) -> dict[str, float]:
    """p50, p95, p99 and max of a trace's request latencies (ms)."""
    latencies = [t.done - t.sent for t in trace]
    return {f"p{p}": percentile(latencies, p) for p in (50, 95, 99)} | {"max": max(latencies, default=0.0)}


def flash_sale(result: Result, *, users: int, seats: int) -> FlashSale:
    """Summarise the flash sale: counts, time to sell out, latency percentiles, series per bin."""
    trace = result.trace
    start = min((t.sent for t in trace), default=0.0)
    counts = dict.fromkeys(STATUS_GROUPS, 0)
    for t in trace:
        counts[group(t.status)] += 1
    sold = sorted(t.done for t in trace if t.status == 201)
    sell_out = (sold[seats - 1] - start) / 1000 if len(sold) >= seats else None
    last = (max((t.done for t in trace), default=start) - start) / 1000
    width = _bin_width(last)
    bins = max(1, math.ceil(last / width)) if trace else 0
    series_counts = {name: [0] * bins for name in STATUS_GROUPS}
    per_bin: list[list[float]] = [[] for _ in range(bins)]
    for t in trace:
        index = min(bins - 1, int((t.done - start) / 1000 / width))
        series_counts[group(t.status)][index] += 1
        per_bin[index].append(t.done - t.sent)
    cumulative, running = [], 0
    for n in series_counts["201"] if bins else []:
        running += n
        cumulative.append(running)
    return FlashSale(
        users=users,
        seats=seats,
        connections=result.scenario.connections,
        attempts=len(trace),
        counts=counts,
        sell_out_seconds=sell_out,
        last_answer_seconds=last,
        latency_ms=latency_percentiles(trace),
        retried_users=sum(1 for t in trace if t.attempt == 2),
        bin_seconds=width,
        order=seat_order(trace),
        series_t=[(i + 0.5) * width for i in range(bins)],
        series_counts=series_counts,
        series_latency={f"p{p}": [percentile(v, p) for v in per_bin] for p in (50, 95, 99)},
        cumulative_201=cumulative,
    )
