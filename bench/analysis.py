"""Figures derived from the flash sale's per-request trace: sell-out time, latency, time series."""

import math
from dataclasses import dataclass, field

from bench.load import Result

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
    series_t: list[float] = field(default_factory=list)
    series_counts: dict[str, list[int]] = field(default_factory=dict)
    series_latency: dict[str, list[float]] = field(default_factory=dict)
    cumulative_201: list[int] = field(default_factory=list)


def _bin_width(span: float) -> float:
    for width in (0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0):
        if span / width <= 80:
            return width
    return 10.0


def flash_sale(result: Result, *, users: int, seats: int) -> FlashSale:
    """Summarise the flash sale: counts, time to sell out, latency percentiles, series per bin."""
    trace = result.trace
    start = min((t[0] for t in trace), default=0.0)
    counts = dict.fromkeys(STATUS_GROUPS, 0)
    for _, _, status, _ in trace:
        counts[group(status)] += 1
    sold = sorted(done for _, done, status, _ in trace if status == 201)
    sell_out = (sold[seats - 1] - start) / 1000 if len(sold) >= seats else None
    latencies = [done - sent for sent, done, _, _ in trace]
    last = (max((t[1] for t in trace), default=start) - start) / 1000
    width = _bin_width(last)
    bins = max(1, math.ceil(last / width)) if trace else 0
    series_counts = {name: [0] * bins for name in STATUS_GROUPS}
    per_bin: list[list[float]] = [[] for _ in range(bins)]
    for sent, done, status, _ in trace:
        index = min(bins - 1, int((done - start) / 1000 / width))
        series_counts[group(status)][index] += 1
        per_bin[index].append(done - sent)
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
        latency_ms={f"p{p}": percentile(latencies, p) for p in (50, 95, 99)} | {"max": max(latencies, default=0.0)},
        retried_users=sum(1 for *_, attempt in trace if attempt == 2),
        bin_seconds=width,
        series_t=[(i + 0.5) * width for i in range(bins)],
        series_counts=series_counts,
        series_latency={f"p{p}": [percentile(v, p) for v in per_bin] for p in (50, 95, 99)},
        cumulative_201=cumulative,
    )
