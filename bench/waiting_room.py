"""The waiting-room scenario: a crowd joins a sale with a waiting room, then follows its places and books.

On a ticket with a waiting room whose sale opens later (its queue is open already), in one run:
1. `queue-join`: every crowd user joins once (POST .../queue/), all at once at the scenario level's
   connections: wrk in once mode, as the flash sale books (a 503 is retried); joins/s and p99.
2. `queue-ask`: a flood of asks (GET .../queue/) by those users, each request another user, for
   the scenario length: asks/s and p99 at saturation, as the sold-out flood measures that answer.
3. The crowd (bench/crowd.py, a process of its own) follows `poll_after_seconds` through the
   opening, books when admitted, and stops when every user is booked or has been told `sold_out`.

The sale's opening is set when the ticket is created, far enough ahead for 1 and 2 (opens_in).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.analysis import latency_percentiles
from bench.load import Result, measured
from bench.procs import CpuWindow, Owned

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    users: int
    seats: int
    admit_per_minute: int
    admission_seconds: int
    poll_budget: int
    connections: int  # the crowd's requests in flight at most


@dataclass
class WaitingRoom:
    settings: Settings
    join: Result | None = None
    ask: Result | None = None
    opening: float = 0.0  # wall clock, fixed when the ticket is created
    floods_done: float = 0.0  # wall clock: the join and ask floods are over
    flow: dict = field(default_factory=dict)  # bench/crowd.py's summary
    flow_cpu: dict[str, float] = field(default_factory=dict)  # seconds per component, "crowd" too
    flow_seconds: float = 0.0
    db: tuple[int, int] = (0, 0)  # issued_count, confirmed reservations afterwards

    @property
    def joined(self) -> int:
        """Users who got a place (201) in the join phase."""
        return 0 if self.join is None else len({t.user for t in self.join.trace if t.status == 201})

    @property
    def join_latency(self) -> dict[str, float]:
        """Latency percentiles of the joins, from wrk's per-request trace (without its /healthz fillers)."""
        return latency_percentiles(self.join.trace if self.join else [])

    @property
    def seats_sold(self) -> int:
        return self.flow.get("books", {}).get("201", 0)

    @property
    def opening_to_last_seat(self) -> float | None:
        last = self.flow.get("last_seat_at")
        return None if last is None else last - self.opening

    @property
    def sold_out_after_last_seat(self) -> float | None:
        """From the last seat's 201 to the last waiting place told sold_out."""
        last, told = self.flow.get("last_seat_at"), self.flow.get("last_sold_out_at")
        return None if last is None or told is None else max(0.0, told - last)

    @property
    def opening_to_last_admission(self) -> float | None:
        last = self.flow.get("last_admission")
        return None if last is None else last - self.opening

    @property
    def admitted_not_201(self) -> int:
        return sum(self.flow.get("admitted_refused", {}).values())

    def ask_rates(self) -> tuple[float, float]:
        """The crowd's asks per second: over the whole flow, and the busiest 5 seconds."""
        series = self.flow.get("asks_per_second") or [0]
        span = max(self.flow.get("end", 0) - self.flow.get("start", 0), 1e-9)
        window = min(5, len(series))
        peak = max(sum(series[i : i + window]) / window for i in range(len(series) - window + 1))
        return sum(series) / span, peak

    def flow_requests(self) -> int:
        return sum(self.flow.get("asks", {}).values()) + sum(self.flow.get("books", {}).values())


def schedule_of(join: Result, users: int) -> list[tuple[float, int]]:
    """Each user's last join answer: when it came (CLOCK_MONOTONIC ms) and its poll_after_seconds.

    The crowd carries on from there as if each user had asked every poll_after_seconds since it
    joined, so the users' asks keep the spread of their joins.
    """
    last: dict[int, tuple[float, int]] = {}
    for t in join.trace:
        if t.poll_after and (t.user not in last or t.done > last[t.user][0]):
            last[t.user] = (t.done, t.poll_after)
    return [last.get(line, (0.0, 1)) for line in range(1, users + 1)]


def opens_in(settings: Settings, *, join_rate: float, ask_seconds: float) -> float:
    """Seconds from creating the ticket to its opening: the joins and the ask flood should be over by then.

    The opening is fixed when the ticket is created (moving `sale_starts_at` earlier once places
    exist does not make them admitted earlier: see bench/README.md). The joins are reckoned at
    0.6 x `join_rate`, the run's sold-out answers per second: a join costs about what a sold-out
    answer does (a JWT, at most one read of the caller's reservation, one Lua script), and a
    shared machine slows down between scenarios. The crowd asks meanwhile, as a crowd waiting for
    the opening would.
    """
    joins = settings.users / max(50.0, 0.6 * join_rate)
    return round(joins + ask_seconds + 3.0, 1)


def flow_deadline(settings: Settings) -> float:
    """Long enough for the admissions, and for the last place to ask again after its longest wait."""
    admitting = settings.seats * 60 / settings.admit_per_minute
    tail = 2 * settings.users / settings.poll_budget
    return 60 + 2 * admitting + 1.5 * tail


def run_crowd(
    room: WaitingRoom,
    *,
    base_url: str,
    ticket_id: str,
    tokens_file: Path,
    schedule: list[tuple[float, int]],
    work_dir: Path,
    owned: Owned,
    cpu: CpuWindow,
) -> None:
    """Run bench/crowd.py until every user is done; keep its summary and everyone's CPU meanwhile."""
    host, port = base_url.removeprefix("http://").split(":")
    config = work_dir / "crowd.json"
    result = work_dir / "crowd-result.json"
    deadline = flow_deadline(room.settings) + max(0.0, room.opening - time.time())
    config.write_text(
        json.dumps(
            {
                "host": host,
                "port": int(port),
                "ticket": ticket_id,
                "tokens": str(tokens_file),
                "users": room.settings.users,
                "connections": room.settings.connections,
                "admission_seconds": room.settings.admission_seconds,
                "deadline_seconds": deadline,
                "schedule": schedule,
                "result": str(result),
            }
        )
    )
    started = time.monotonic()
    args = [sys.executable, "-m", "bench.crowd", str(config)]
    code, room.flow_cpu = measured(
        args, env=None, log=work_dir / "crowd.log", cwd=ROOT, owned=owned, cpu=cpu, timeout=deadline + 30
    )
    room.flow_seconds = time.monotonic() - started
    room.flow_cpu["crowd"] = room.flow_cpu.pop("generator")
    if code != 0 or not result.is_file():
        raise RuntimeError(f"the crowd failed (exit {code}); see {work_dir / 'crowd.log'}")
    room.flow = json.loads(result.read_text())
