"""The Markdown report of a run, with its figures next to the targets."""

import os
import platform
import socket
from datetime import datetime
from pathlib import Path

TARGETS = {
    "booking/healthz": 0.20,
    "sold-out/healthz": 0.50,
    "booking p99 (ms)": 150.0,
    "CPU per booking, all processes (ms)": 2.5,
}


def basename(stamp: datetime) -> str:
    return f"{stamp:%Y-%m-%d}-{socket.gethostname()}"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def machine() -> dict[str, str]:
    """Cores, memory, CPU model and load, read from /proc."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), "?")
    meminfo = Path("/proc/meminfo").read_text().split()
    memory_kb = int(meminfo[meminfo.index("MemTotal:") + 1])
    return {
        "host": socket.gethostname(),
        "cores": str(os.cpu_count()),
        "memory": f"{memory_kb / 1024 / 1024:.1f} GiB",
        "CPU model": model,
        "kernel": platform.release(),
        "load average (1, 5, 15 min) at the end": load_average(),
    }


def write(run, out: Path) -> Path:
    """Write the report for a run and return its path."""
    path = out / f"{basename(run.started)}.md"
    path.write_text("\n".join(_lines(run, out)) + "\n")
    return path


def _lines(run, out: Path) -> list[str]:
    o = run.options
    lines = [
        f"# Flash-sale benchmark, {run.started:%Y-%m-%d %H:%M} UTC, {socket.gethostname()}",
        "",
        f"Mode: **{'quick (CI smoke run; speeds are meaningless)' if o.quick else 'full'}**; wall time "
        f"{run.wall_seconds:.0f} s. Command: `python -m bench flash-sale {_argv(o)}`.",
        "",
        "## Guarantees",
        "",
    ]
    if run.failures:
        lines += [f"- **FAILED**: {failure}" for failure in run.failures]
    else:
        lines.append(
            f"- All hold: check_invariants passed, the flash sale sold exactly {o.flash_seats:,} seats "
            f"({run.flash_db[1]:,} confirmed, issued_count {run.flash_db[0]:,}), no 5xx other than 503."
        )
    lines += [f"- Warning: {warning}" for warning in run.warnings]
    lines += ["", *_targets(run), "", *_machine(run), "", *_scenarios(run), "", *_cpu(run), ""]
    lines += [*_engine(run), "", *_flash(run, out), "", *_room(run, out), "", *_stack(run), ""]
    lines += [*_round_trips(run), "", *_profiles(run), ""]
    lines += ["## Server log (lines by kind)", "", "```"]
    lines += [f"{n:>7}  {kind}" for kind, n in run.server_log] or ["(empty)"]
    lines += ["```", ""]
    lines += ["## check_invariants", "", f"Exit code {run.invariants[0]}:", "", "```", run.invariants[1], "```", ""]
    lines += _notes()
    return lines


def _argv(o) -> str:
    parts = ["--quick"] if o.quick else []
    parts += [
        f"--workers {o.workers}",
        f"--duration {o.duration:g}",
        f"--connections {','.join(map(str, o.connections))}",
    ]
    if o.crowd is None:
        parts.append("--no-waiting-room")
    if o.stack_workers is None:
        parts.append("--no-scale-out")
    return " ".join(parts)


def _level(run) -> int:
    return run.options.level


def _pick(run, name: str):
    level = _level(run)
    return next((r for r in run.results if r.scenario.name == name and r.scenario.connections == level), None)


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else 0.0


def _targets(run) -> list[str]:
    healthz, me, booking, sold_out = (_pick(run, n) for n in ("healthz", "auth-me", "booking", "sold-out"))
    level = _level(run)
    lines = [f"## Figures against the targets ({level} connections)", ""]
    if not all((healthz, me, booking, sold_out)):
        return [*lines, "Not all scenarios ran."]
    cpu = booking.cpu_ms_per_request()
    health = healthz.rate(200)
    # label, value (None: not measured), format, target text, bound, at least (True) or at most (False)
    rows: list[tuple[str, float | None, str, str, float | None, bool]] = [
        ("booking 201/s ÷ healthz 200/s", _ratio(booking.rate(201), health), ".3f", ">= 0.20", 0.20, True),
        ("sold-out 409/s ÷ healthz 200/s", _ratio(sold_out.rate(409), health), ".3f", ">= 0.50", 0.50, True),
        ("booking 201/s ÷ auth-me 200/s", _ratio(booking.rate(201), me.rate(200)), ".3f", "(no target)", None, True),
        ("booking p99 latency (ms)", booking.latency_ms["p99"], ".1f", "<= 150", 150.0, False),
        ("CPU per booking, gunicorn + postgres + redis (ms)", cpu["server total"], ".3f", "<= 2.5", 2.5, False),
        ("CPU per booking, also counting wrk (ms)", cpu["total with wrk"], ".3f", "(for reference)", None, False),
        ("booking: Redis lock held per confirmed booking (ms)", _lock(booking), ".3f", "<= 0.5", 0.5, False),
        ("booking: mean batch (confirmed per batch)", _batch(booking), ".2f", "(no target)", None, True),
    ]
    sale = run.sale
    if sale is not None and run.flash is not None:
        rows += [
            (
                "flash sale: last seat's 201 after the first request (s)",
                sale.sell_out_seconds,
                ".2f",
                "<= 1.5",
                1.5,
                False,
            ),
            ("flash sale: every user answered after (s)", sale.last_answer_seconds, ".2f", "<= 5", 5.0, False),
            ("flash sale: Redis lock held per confirmed booking (ms)", _lock(run.flash), ".3f", "<= 0.5", 0.5, False),
            ("flash sale: mean batch (confirmed per batch)", _batch(run.flash), ".2f", "(no target)", None, True),
            (
                "flash sale: seats to a later arrival than a sold_out",
                sale.order.seats_after_a_sold_out,
                ",.0f",
                "(0 = strict arrival order)",
                None,
                False,
            ),
        ]
    rows += _room_rows(run, health)
    rows += _stack_rows(run, healthz, booking)
    lines += ["| figure | measured | target | met |", "| --- | ---: | --- | --- |"]
    for label, value, spec, target, bound, at_least in rows:
        if value is None:
            lines.append(f"| {label} | - | {target} | |")
            continue
        met = "" if bound is None else ("yes" if (value >= bound if at_least else value <= bound) else "**no**")
        lines.append(f"| {label} | {value:{spec}} | {target} | {met} |")
    if run.options.quick:
        lines += ["", "Quick mode: one second per scenario on a cold server; these figures mean nothing."]
    return lines


def _lock(result) -> float | None:
    return result.engine.lock_ms_per_booking if result is not None and result.engine else None


def _batch(result) -> float | None:
    return result.engine.mean_batch if result is not None and result.engine else None


def _room_rows(run, health: float) -> list:
    room = run.room
    if room is None or room.join is None or room.ask is None:
        return []
    mean, peak = room.ask_rates()
    budget = room.settings.poll_budget
    return [
        (
            "waiting room: joins 201/s ÷ healthz 200/s",
            _ratio(room.join.rate(201), health),
            ".3f",
            ">= 0.50",
            0.50,
            True,
        ),
        ("waiting room: asks 200/s ÷ healthz 200/s", _ratio(room.ask.rate(200), health), ".3f", ">= 0.50", 0.50, True),
        ("waiting room: join p99 (ms)", room.join_latency["p99"], ".1f", "(no target)", None, False),
        ("waiting room: ask p99 (ms)", room.ask.latency_ms["p99"], ".1f", "(no target)", None, False),
        (
            f"waiting room: the crowd's asks/s over the flow (busiest 5 s: {peak:,.0f})",
            mean,
            ",.0f",
            f"<= {budget:,} (QUEUE_POLL_BUDGET)",
            float(budget),
            False,
        ),
        (
            "waiting room: opening to the last seat's 201 (s)",
            room.opening_to_last_seat,
            ".2f",
            f"(about {room.settings.seats * 60 / room.settings.admit_per_minute:.0f} s at the rate)",
            None,
            False,
        ),
        (
            "waiting room: opening to the last admission granted (s)",
            room.opening_to_last_admission,
            ".2f",
            "(no target)",
            None,
            False,
        ),
        ("waiting room: admitted users who got anything but 201", room.admitted_not_201, ",.0f", "0", 0.0, False),
        (
            "waiting room: last seat to every waiting place told sold_out (s)",
            room.sold_out_after_last_seat,
            ".2f",
            f"(<= {2 * room.settings.users / budget:.0f} s: the longest poll_after)",
            None,
            False,
        ),
    ]


def _stack_rows(run, healthz, booking) -> list:
    stack = run.stack
    if stack is None or stack.healthz is None or stack.booking is None:
        return []
    return [
        (
            "stack: booking 201/s ÷ stack healthz 200/s",
            _ratio(stack.booking.rate(201), stack.healthz.rate(200)),
            ".3f",
            "(no target)",
            None,
            True,
        ),
        (
            "stack ÷ one gunicorn: booking 201/s",
            _ratio(stack.booking.rate(201), booking.rate(201)),
            ".3f",
            "(no target; same machine)",
            None,
            True,
        ),
        (
            "stack ÷ one gunicorn: healthz 200/s",
            _ratio(stack.healthz.rate(200), healthz.rate(200)),
            ".3f",
            "(no target; same machine)",
            None,
            True,
        ),
        ("stack: Redis lock held per confirmed booking (ms)", _lock(stack.booking), ".3f", "<= 0.5", 0.5, False),
    ]


def _machine(run) -> list[str]:
    lines = ["## Machine, versions, settings", "", "| | |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in machine().items()]
    lines.append(f"| load average at the start | {run.load_at_start} |")
    lines += [f"| {k} | {v} |" for k, v in run.versions.items()]
    o = run.options
    settings = {
        "server": "gunicorn, "
        + ", ".join(f"{k} {v}" for k, v in run.gunicorn.items())
        + " (bench/gunicorn_conf.py over the project's gunicorn.conf.py)",
        "load generator": f"wrk, {os.cpu_count()} threads (1 for the flash sale), timeout 30 s, bench/wrk/bench.lua",
        "scenario length": f"{o.duration:g} s each, at {', '.join(map(str, o.connections))} connections",
        "users seeded": f"{run.seeded.users:,} in {run.seeded.seconds:.1f} s (bulk insert, one password hash)"
        if run.seeded
        else "-",
        "flash sale": f"{o.flash_users:,} users, {o.flash_seats:,} seats, {o.flash_connections} connections",
        "database": f"{o.db_name} (scratch, {'kept' if o.keep_db else 'dropped at the end'}); Redis prefix "
        f"{o.redis_prefix}",
        "waiting room": "not run"
        if o.crowd is None
        else f"{o.crowd.users:,} users, {o.crowd.seats:,} seats, admit_per_minute {o.crowd.admit_per_minute:,}, "
        f"admission_seconds {o.crowd.admission_seconds}, QUEUE_POLL_BUDGET {o.crowd.poll_budget:,}, the crowd "
        f"{o.crowd.connections} requests in flight (bench/crowd.py)",
        "scale-out": "not run"
        if o.stack_workers is None
        else f"nginx, 3 FastTicket processes x {o.stack_workers} sync workers, PgBouncer (scripts/harness/stack.py)",
    }
    lines += [f"| {k} | {v} |" for k, v in settings.items()]
    lines += ["", "Environment of the server (and of the seeding process):", "", "```"]
    lines += [f"{k}={v}" for k, v in sorted(run.env_shown.items())]
    return [*lines, "```"]


def _scenarios(run) -> list[str]:
    lines = [
        "## Scenarios",
        "",
        "Every request of the token scenarios carries a different user's token (each wrk thread cycles "
        "through its own slice). Latency from wrk's histogram; `expected/s` counts only the status the "
        "scenario is about.",
        "",
        "| scenario | conn | req/s | expected/s | p50 ms | p90 ms | p99 ms | max ms | statuses | socket errors |"
        " tokens reused |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: |",
    ]
    for r in _measured(run):
        lat = r.latency_ms
        statuses = ", ".join(f"{code}: {n:,}" for code, n in sorted(r.statuses.items()))
        errors = ", ".join(f"{k} {v}" for k, v in r.errors.items() if v and k != "status") or "none"
        lines.append(
            f"| {r.scenario.name} ({r.scenario.expected}) | {r.scenario.connections} | {r.rate():,.1f} | "
            f"{r.expected_rate:,.1f} | {lat['p50']:.1f} | {lat['p90']:.1f} | {lat['p99']:.1f} | {lat['max']:.1f} | "
            f"{statuses} | {errors} | {r.wrapped} |"
        )
    odd = [
        (r, code, body) for r in _measured(run) for code, body in r.samples.items() if int(code) != r.scenario.expected
    ]
    if odd:
        lines += ["", "First body of each unexpected status:", ""]
        lines += [f"- {r.scenario.name} c{r.scenario.connections} {code}: `{body[:200]}`" for r, code, body in odd]
    return lines


def _cpu(run) -> list[str]:
    lines = [
        "## CPU per request by component",
        "",
        "utime+stime from /proc/<pid>/stat over each scenario's window, divided by the answers: gunicorn is the "
        "master and its workers; postgres the postmaster, its helpers and the benchmark database's backends; "
        "redis the whole redis-server (shared with other sessions); wrk from its rusage when reaped. "
        "`other DBs` is PostgreSQL work for other databases in the same window: noise from other sessions.",
        "",
        "| scenario | conn | answers | gunicorn ms | nginx + pgbouncer ms | postgres ms | redis ms |"
        " server total ms | wrk ms | other DBs ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in _measured(run, with_flash=True):
        c = r.cpu_ms_per_request()
        proxy = c.get("nginx", 0.0) + c.get("pgbouncer", 0.0)
        lines.append(
            f"| {r.scenario.name} | {r.scenario.connections} | {sum(r.statuses.values()):,} | {c['gunicorn']:.3f} | "
            f"{proxy:.3f} | {c['postgres']:.3f} | {c['redis']:.3f} | **{c['server total']:.3f}** | {c['wrk']:.3f} | "
            f"{c['postgres-other-db']:.3f} |"
        )
    return lines


def _measured(run, *, with_flash: bool = False) -> list:
    """Every wrk scenario of the run, in the order they ran (the flash sale where asked)."""
    found = list(run.results)
    if with_flash and run.flash is not None:
        found.append(run.flash)
    if run.room is not None:
        found += [r for r in (run.room.join, run.room.ask) if r is not None]
    if run.stack is not None:
        found += run.stack.results
    return found


def _engine(run) -> list[str]:
    lines = [
        "## The booking engine, from /metrics",
        "",
        "GET /metrics before and after each scenario (gunicorn with PROMETHEUS_MULTIPROC_DIR, so one answer adds "
        "up every worker; through the stack each process's own /metrics, added up). Lock held per confirmed "
        "booking = `fastticket_booking_lock_held_seconds_sum` ÷ `fastticket_booking_batch_bookings_sum`; mean "
        "batch = confirmed reservations per batch (`..._batch_bookings_sum` ÷ `_count`); taken per batch counts "
        "refused bookings too (`fastticket_booking_batch_size`).",
        "",
        "| scenario | conn | batches | confirmed | taken | mean batch | taken per batch | lock held per booking ms |"
        " reserve outcomes |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in _measured(run, with_flash=True):
        e = r.engine
        if e is None or not (e.batches or e.outcomes):
            continue
        outcomes = ", ".join(f"{name} {n:,}" for name, n in sorted(e.outcomes.items()))
        lines.append(
            f"| {r.scenario.name} | {r.scenario.connections} | {e.batches:,} | {e.confirmed:,} | {e.taken:,} | "
            f"{_fmt(e.mean_batch, '.2f')} | {_fmt(e.mean_taken, '.2f')} | {_fmt(e.lock_ms_per_booking, '.3f')} | "
            f"{outcomes} |"
        )
    return lines


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else f"{value:{spec}}"


def _flash(run, out: Path) -> list[str]:
    sale, result = run.sale, run.flash
    lines = ["## The flash sale", ""]
    if sale is None or result is None:
        return [*lines, "Did not run."]
    sell_out = f"{sale.sell_out_seconds:.2f} s" if sale.sell_out_seconds is not None else "never"
    rows = {
        "users (each books once; a 503 is retried)": f"{sale.users:,}",
        "seats": f"{sale.seats:,}",
        "connections": f"{sale.connections}",
        "time to sell out (first booking sent to the last seat's 201)": sell_out,
        "every user answered after (the last answer, retries included)": f"{sale.last_answer_seconds:.2f} s",
        "answers 201 / 409 / 503 / other": " / ".join(f"{sale.counts[k]:,}" for k in ("201", "409", "503", "other")),
        "booking attempts (users retried after a 503)": f"{sale.attempts:,} ({sale.retried_users:,})",
        "unanswered at the end": f"{result.unanswered}",
        "throughput (answers per second over the sale)": f"{result.rate():,.1f}",
        "latency p50 / p95 / p99 / max": " / ".join(f"{sale.latency_ms[k]:.1f}" for k in ("p50", "p95", "p99", "max"))
        + " ms",
        "in the database afterwards: issued_count, confirmed": f"{run.flash_db[0]:,}, {run.flash_db[1]:,}",
        "Redis lock held per confirmed booking; mean batch": f"{_fmt(_lock(result), '.3f')} ms; "
        f"{_fmt(_batch(result), '.2f')}",
    }
    order = sale.order
    if order is not None:
        rows |= {
            "seats that went to a later arrival than a request told sold_out": f"{order.seats_after_a_sold_out:,} "
            f"(the latest sent {order.latest_lead_ms:.2f} ms after the first sold_out's request)",
            "sold_out answers to requests sent before the last seat's request": f"{order.sold_outs_before_a_seat:,} "
            f"of {order.sold_out_answers:,}",
        }
    lines += ["| | |", "| --- | --- |", *[f"| {k} | {v} |" for k, v in rows.items()], ""]
    lines += [
        "Arrival is when wrk sent the request (the send time in its per-request trace, bench/wrk/bench.lua; a "
        "retry after a 503 arrives anew). Between that and the booking line come the kernel's accept queue, "
        "gunicorn's workers and the JWT check, so a seat can go to a request sent a little later even though the "
        "line itself gives seats in the order bookings joined it.",
        "",
    ]
    for name, title in (
        ("flash-throughput", "Answers per second by status, and seats sold"),
        ("flash-latency", "Latency percentiles over time"),
        ("scenarios", "Throughput and p99 per scenario"),
        ("cpu", "CPU per request by component"),
    ):
        if name in run.plots:
            lines += [f"![{title}]({run.plots[name].relative_to(out)})", ""]
    return lines


def _room(run, out: Path) -> list[str]:
    room = run.room
    lines = ["## The waiting room", ""]
    if room is None or room.join is None or room.ask is None:
        return [*lines, "Not run." if room is None else "Did not finish."]
    st = room.settings
    mean, peak = room.ask_rates()
    flow = room.flow
    crowd_cpu = room.flow_cpu.get("crowd", 0.0)
    server_cpu = sum(room.flow_cpu.get(name, 0.0) for name in ("gunicorn", "postgres", "redis"))
    requests = max(1, room.flow_requests())
    first = flow.get("first_admitted_at")
    rows = {
        "ticket": f"{st.seats:,} seats, waiting room, admit_per_minute {st.admit_per_minute:,} (the seats in about "
        f"{st.seats * 60 / st.admit_per_minute:.0f} s), admission_seconds {st.admission_seconds}; "
        f"QUEUE_POLL_BUDGET {st.poll_budget:,}",
        "crowd": f"{st.users:,} users (tokens), {st.connections} requests in flight at most after the joins",
        "joins (wrk, each user once, before the opening)": _flood(room.join, 201)
        + f"; {room.joined:,} places; p50 / p99 {room.join_latency['p50']:.1f} / {room.join_latency['p99']:.1f} ms",
        "asks at saturation (wrk, every request another user)": _flood(room.ask, 200)
        + f"; p50 / p99 {room.ask.latency_ms['p50']:.1f} / {room.ask.latency_ms['p99']:.1f} ms",
        "the floods ended": _before_opening(room),
        "crowd's asks by answer": _counts(flow.get("asks", {})),
        "crowd's asks per second (whole flow; busiest 5 s) against the budget": f"{mean:,.0f}; {peak:,.0f} "
        f"(QUEUE_POLL_BUDGET {st.poll_budget:,})",
        "crowd's ask latency p50 / p99 / max (connect to last byte)": _ms(flow.get("ask_ms", {})),
        "admitted users; their bookings by answer": f"{flow.get('admitted', 0):,}; {_counts(flow.get('books', {}))}",
        "admitted users who got anything but 201 (after retrying 503s)": f"{room.admitted_not_201:,} "
        f"{_counts(flow.get('admitted_refused', {}))} ({flow.get('admitted_retries', 0):,} retries)",
        "opening to the first admission seen; to the last seat's 201": f"{_since(first, room.opening)}; "
        f"{_fmt(room.opening_to_last_seat, '.2f')} s",
        "opening to the first and the last admission granted (admitted_until less admission_seconds)": (
            f"{_since(flow.get('first_admission'), room.opening)}; {_since(flow.get('last_admission'), room.opening)}"
        ),
        "admission granted to its user's ask that learned it, p50 / p99 / max": _ms(flow.get("learned_after_ms", {})),
        "last seat to every waiting place told sold_out": f"{_fmt(room.sold_out_after_last_seat, '.2f')} s "
        f"(the longest poll_after_seconds is {2 * st.users / st.poll_budget:.0f} s)",
        "how the users' stories ended": _counts(flow.get("ended", {})),
        "users unfinished at the crowd's deadline": f"{flow.get('unfinished', 0):,}",
        "in the database afterwards: issued_count, confirmed": f"{room.db[0]:,}, {room.db[1]:,}",
        "CPU over the flow: server (gunicorn + postgres + redis); the crowd process": f"{server_cpu:.1f} s "
        f"({server_cpu * 1000 / requests:.2f} ms per request); {crowd_cpu:.1f} s "
        f"({crowd_cpu * 1000 / requests:.2f} ms per request, {crowd_cpu / max(room.flow_seconds, 1e-9):.0%} of a "
        f"core over {room.flow_seconds:.0f} s)",
    }
    lines += ["| | |", "| --- | --- |", *[f"| {k} | {v} |" for k, v in rows.items()], ""]
    if "waiting-room" in run.plots:
        lines += [f"![The waiting room's flow]({run.plots['waiting-room'].relative_to(out)})", ""]
    lines += [
        "The joins and the ask flood are wrk (bench/wrk/bench.lua), as the other scenarios, at the ratios' "
        "connections; the sale opens after them, at a time fixed when the ticket was created. From then the crowd "
        "is bench/crowd.py: one asyncio process where each user asks when its last `poll_after_seconds` says "
        "(carrying on from its join answer as if it had asked that often since), books at once when admitted, "
        "and is done when booked or told `sold_out`; a user with nothing due holds no connection. The busiest "
        "5 seconds can pass the budget where many users' waits end together (those told to come back at the "
        "same moment); the mean is what the budget bounds.",
    ]
    return lines


def _flood(result, expected: int) -> str:
    return (
        f"{result.rate(expected):,.0f}/s over {result.duration:.1f} s ({_counts(result.statuses)}), "
        f"server CPU {result.cpu_ms_per_request()['server total']:.2f} ms each"
    )


def _before_opening(room) -> str:
    ahead = room.opening - room.floods_done
    if ahead >= 0:
        return f"{ahead:.1f} s before the opening"
    return f"**{-ahead:.1f} s after the opening** (admissions began meanwhile)"


def _counts(counts: dict) -> str:
    return ", ".join(f"{name}: {n:,}" for name, n in sorted(counts.items(), key=lambda item: str(item[0]))) or "none"


def _ms(p: dict) -> str:
    return " / ".join(f"{p.get(k, 0.0):.1f}" for k in ("p50", "p99", "max")) + " ms"


def _since(moment: float | None, start: float) -> str:
    return "never" if moment is None else f"{moment - start:.2f} s"


def _stack(run) -> list[str]:
    stack = run.stack
    lines = ["## Scale-out: three FastTicket processes behind nginx", ""]
    if stack is None:
        return [*lines, "Not run (`--no-scale-out`)."]
    if stack.healthz is None or stack.booking is None:
        return [*lines, "Did not finish."]
    direct = {name: _pick(run, name) for name in ("healthz", "booking")}
    lines += [
        "scripts/harness/stack.py, as `./dev stack` runs it: nginx (deploy/nginx/nginx.conf.template) in front of "
        f"{stack.processes} gunicorns of {stack.workers} sync workers each (gunicorn.conf.py), PgBouncer in "
        "transaction mode, the run's database and Redis. It runs after the single gunicorn stopped, with the same "
        "wrk, connections and length; its booking ticket is a fresh one with a million seats.",
        "",
        "```",
        stack.described,
        "```",
        "",
        "| scenario | one gunicorn /s | the stack /s | stack ÷ one | p99 one ms | p99 stack ms | server CPU one ms |"
        " server CPU stack ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, result, expected in (("healthz", stack.healthz, 200), ("booking", stack.booking, 201)):
        one = direct[name]
        one_rate = one.rate(expected) if one else 0.0
        lines.append(
            f"| {name} ({expected}) | {one_rate:,.0f} | {result.rate(expected):,.0f} | "
            f"{_ratio(result.rate(expected), one_rate):.3f} | {one.latency_ms['p99'] if one else 0:.1f} | "
            f"{result.latency_ms['p99']:.1f} | {one.cpu_ms_per_request()['server total'] if one else 0:.3f} | "
            f"{result.cpu_ms_per_request()['server total']:.3f} |"
        )
    issued, confirmed = run.hot_db.get("stack booking", (0, 0))
    lines += [
        "",
        f"Its hot ticket afterwards: issued_count {issued:,}, {confirmed:,} confirmed, "
        f"{stack.booking.statuses.get(201, 0):,} answers 201 (a 201 wrk saw is always a confirmed reservation; wrk "
        "drops the requests in flight when its time is up, which the server may still book). check_invariants "
        "below runs after the stack stopped.",
    ]
    return lines


def _round_trips(run) -> list[str]:
    lines = [
        "## Round trips per request",
        "",
        "One request of each kind sent through the app in the benchmark process (Django's test client, each by "
        "a new user, so the per-process user cache misses as it does for every flash-sale user), counting SQL "
        "statements and Redis commands. The sold-out request is sent twice: both are refused by the booking's "
        "first statement, with no lock and no Redis command.",
        "",
    ]
    for trips in run.round_trips:
        lines.append(f"- `{trips.path}` -> {trips.status}: {len(trips.sql)} SQL, {len(trips.redis)} Redis")
        lines += [f"  - SQL: `{sql}`" for sql in trips.sql]
        lines += [f"  - Redis: `{command}`" for command in trips.redis]
    return lines


def _profiles(run) -> list[str]:
    if not run.profiles:
        return ["## Profile", "", "Not run (add `--profile`)."]
    lines = [
        "## Profiles of one worker (py-spy)",
        "",
        f"At {max(run.options.connections)} connections, 200 samples a second, only samples inside "
        "gunicorn's handle_request. Phases are inclusive (a sample counts for every phase on its stack); "
        "packages are exclusive (the innermost frame of a known package wins).",
        "",
    ]
    for p in run.profiles:
        lines += [f"### {p.scenario}, {p.mode}: {p.request_samples:,} of {p.samples:,} samples in a request", ""]
        lines += ["| phase (inclusive) | share |", "| --- | ---: |"]
        lines += [f"| {label} | {share:.1%} |" for label, share in p.phases.items() if share >= 0.005]
        lines += ["", "| innermost package | share |", "| --- | ---: |"]
        lines += [f"| {label} | {share:.1%} |" for label, share in p.packages.items()]
        lines += ["", "| top innermost frames | share |", "| --- | ---: |"]
        lines += [f"| `{name}` | {share:.1%} |" for name, share in p.top_leaves[:8]]
        lines.append("")
    return lines


def _notes() -> list[str]:
    return [
        "## How this was measured, and what wrk cannot do",
        "",
        "- gunicorn's sync workers close the connection after every response, so wrk reconnects for each "
        "request: the figures include a TCP connect per request, as a real client of sync workers pays.",
        "- wrk's latency is measured from when the request is written on an open connection; queueing in "
        "gunicorn's listen backlog is included, the connect itself is not.",
        "- wrk cannot give per-request latency to Lua; the flash sale matches each answer to its request through "
        "the echoed X-Request-ID header and times both ends with clock_gettime (LuaJIT FFI).",
        "- wrk keeps every connection busy until its duration ends; a flash-sale user books once. The flash "
        "sale runs one wrk thread that stops when all its users are answered; connections with no user left "
        "ask for /healthz meanwhile (an idle connection would pin a sync worker), which the figures leave out.",
        "- gunicorn 27 closes a connection gracefully: after the answer it waits up to 2 s for the client to "
        "close. wrk closes at once; a client that does not pins a sync worker for those 2 s.",
        "- The machine is shared: other sessions use the same two cores, PostgreSQL and Redis. Compare runs only "
        "with their load averages in mind.",
    ]
