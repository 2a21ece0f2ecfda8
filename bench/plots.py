"""PNG plots of a run: the flash sale over time, and bars per scenario."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.analysis import FlashSale
from bench.load import Result

COLOURS = {"201": "#2e7d32", "409": "#1565c0", "503": "#ef6c00", "other": "#c62828"}
COMPONENTS = ("gunicorn", "postgres", "redis", "wrk")


def flash_throughput(sale: FlashSale, path: Path) -> None:
    """Answers per second by status over the sale, with the seats sold so far."""
    fig, ax = plt.subplots(figsize=(10, 5))
    bottom = [0.0] * len(sale.series_t)
    for name, counts in sale.series_counts.items():
        rates = [n / sale.bin_seconds for n in counts]
        ax.bar(sale.series_t, rates, width=sale.bin_seconds, bottom=bottom, color=COLOURS[name], label=name)
        bottom = [b + r for b, r in zip(bottom, rates, strict=True)]
    ax.set_xlabel("seconds since the first booking was sent")
    ax.set_ylabel(f"answers per second ({sale.bin_seconds:g} s bins)")
    seats = ax.twinx()
    seats.plot(sale.series_t, sale.cumulative_201, color="black", linewidth=1.5, label="seats sold")
    seats.axhline(sale.seats, color="black", linestyle=":", linewidth=1)
    seats.set_ylabel("seats sold (cumulative 201)")
    seats.set_ylim(0, sale.seats * 1.1)
    if sale.sell_out_seconds is not None:
        ax.axvline(sale.sell_out_seconds, color="grey", linestyle="--", linewidth=1)
        ax.annotate(
            f"sold out at {sale.sell_out_seconds:.2f} s",
            (sale.sell_out_seconds, 0),
            xytext=(5, 5),
            textcoords="offset points",
            fontsize=9,
        )
    handles = ax.get_legend_handles_labels()[0] + seats.get_legend_handles_labels()[0]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False)
    ax.set_title(f"Flash sale: {sale.users:,} users, {sale.seats:,} seats, {sale.connections} connections")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def flash_latency(sale: FlashSale, path: Path) -> None:
    """Latency percentiles of the answers completed in each bin."""
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for name, style in (("p50", "-"), ("p95", "--"), ("p99", ":")):
        points = [(t, v) for t, v, n in zip(sale.series_t, sale.series_latency[name], _totals(sale), strict=True) if n]
        ax.plot([t for t, _ in points], [v for _, v in points], style, label=name, linewidth=1.6)
    if sale.sell_out_seconds is not None:
        ax.axvline(sale.sell_out_seconds, color="grey", linestyle="--", linewidth=1, label="sold out")
    ax.set_xlabel("seconds since the first booking was sent (by completion time)")
    ax.set_ylabel("latency (ms)")
    ax.set_title("Flash sale: latency percentiles over time")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _totals(sale: FlashSale) -> list[int]:
    return [sum(column) for column in zip(*sale.series_counts.values(), strict=True)]


def scenario_bars(results: list[Result], path: Path) -> None:
    """Expected-status answers per second and p99 latency, per scenario and connection count."""
    names = list(dict.fromkeys(r.scenario.name for r in results))
    levels = sorted({r.scenario.connections for r in results})
    width = 0.8 / max(1, len(levels))
    fig, (rates, p99) = plt.subplots(1, 2, figsize=(12, 4.5))
    for i, level in enumerate(levels):
        chosen = {r.scenario.name: r for r in results if r.scenario.connections == level}
        xs = [n + (i - (len(levels) - 1) / 2) * width for n in range(len(names))]
        rates.bar(xs, [chosen[n].expected_rate if n in chosen else 0 for n in names], width, label=f"{level} conn")
        p99.bar(xs, [chosen[n].latency_ms["p99"] if n in chosen else 0 for n in names], width, label=f"{level} conn")
    labels = [f"{n}\n({_expected(results, n)}/s)" for n in names]
    for ax, title in ((rates, "answers with the expected status per second"), (p99, "p99 latency (ms)")):
        ax.set_xticks(range(len(names)), labels)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
        ax.legend()
    p99.axhline(150, color="grey", linestyle=":", linewidth=1)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _expected(results: list[Result], name: str) -> int:
    return next(r.scenario.expected for r in results if r.scenario.name == name)


def cpu_bars(results: list[Result], path: Path) -> None:
    """CPU milliseconds per answered request, stacked by component, per scenario."""
    fig, ax = plt.subplots(figsize=(11, 4.5))
    labels = [f"{r.scenario.name}\nc{r.scenario.connections}" for r in results]
    bottom = [0.0] * len(results)
    for component in COMPONENTS:
        values = [r.cpu_ms_per_request()[component] for r in results]
        ax.bar(labels, values, bottom=bottom, label=component)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.axhline(2.5, color="grey", linestyle=":", linewidth=1, label="booking target (server) 2.5 ms")
    ax.set_ylabel("CPU ms per answered request")
    ax.set_title("CPU per request by component (utime+stime from /proc)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def waiting_room(room, path: Path) -> None:
    """The crowd's flow: asks per second above; seats booked and places told sold_out below."""
    flow = room.flow
    fig, (ax, users) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True, height_ratios=(3, 2))
    asks = flow.get("asks_per_second") or []
    opening = room.opening - flow.get("start", room.opening)
    ax.plot(range(len(asks)), asks, color=COLOURS["409"], linewidth=1.2, label="asks per second")
    ax.axhline(room.settings.poll_budget, color="grey", linestyle=":", linewidth=1, label="QUEUE_POLL_BUDGET")
    ax.set_ylabel("asks per second")
    ax.set_title(f"Waiting room: {room.settings.users:,} users for {room.settings.seats:,} seats")
    told = users.twinx()
    for axis, name, colour, label in (
        (users, "seats_per_second", COLOURS["201"], "seats booked"),
        (told, "sold_out_per_second", COLOURS["other"], "places told sold_out (right axis)"),
    ):
        running, total = [], 0
        for n in flow.get(name) or []:
            total += n
            running.append(total)
        axis.plot(range(len(running)), running, color=colour, linewidth=1.6, label=label)
    users.set_ylim(0, room.settings.seats * 1.1)
    users.set_ylabel("seats booked")
    told.set_ylabel("places told sold_out")
    users.set_xlabel("seconds since the crowd started")
    for axis in (ax, users):
        axis.axvline(opening, color="black", linestyle="--", linewidth=1, label="opening" if axis is ax else None)
        axis.grid(alpha=0.3)
    handles = ax.get_legend_handles_labels()[0] + users.get_legend_handles_labels()[0]
    handles += told.get_legend_handles_labels()[0]
    fig.legend(handles=handles, loc="lower center", ncol=3, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
