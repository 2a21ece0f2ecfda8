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
    lines += [*_flash(run, out), "", *_round_trips(run), "", *_profiles(run), ""]
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
    return " ".join(parts)


def _level(run) -> int:
    return 64 if 64 in run.options.connections else max(run.options.connections)


def _pick(run, name: str):
    level = _level(run)
    return next((r for r in run.results if r.scenario.name == name and r.scenario.connections == level), None)


def _targets(run) -> list[str]:
    healthz, me, booking, sold_out = (_pick(run, n) for n in ("healthz", "auth-me", "booking", "sold-out"))
    level = _level(run)
    lines = [f"## Figures against the targets ({level} connections)", ""]
    if not all((healthz, me, booking, sold_out)):
        return [*lines, "Not all scenarios ran."]
    cpu = booking.cpu_ms_per_request()
    rows = [
        ("booking 201/s ÷ healthz 200/s", booking.rate(201) / max(healthz.rate(200), 1e-9), ">= 0.20", 0.20, True),
        ("sold-out 409/s ÷ healthz 200/s", sold_out.rate(409) / max(healthz.rate(200), 1e-9), ">= 0.50", 0.50, True),
        ("booking 201/s ÷ auth-me 200/s", booking.rate(201) / max(me.rate(200), 1e-9), "(no target)", None, True),
        ("booking p99 latency (ms)", booking.latency_ms["p99"], "<= 150", 150.0, False),
        ("CPU per booking, gunicorn + postgres + redis (ms)", cpu["server total"], "<= 2.5", 2.5, False),
        ("CPU per booking, also counting wrk (ms)", cpu["total with wrk"], "(for reference)", None, False),
    ]
    lines += ["| figure | measured | target | met |", "| --- | ---: | --- | --- |"]
    for label, value, target, bound, at_least in rows:
        met = "" if bound is None else ("yes" if (value >= bound if at_least else value <= bound) else "**no**")
        lines.append(f"| {label} | {value:.3f} | {target} | {met} |")
    if run.options.quick:
        lines += ["", "Quick mode: one second per scenario on a cold server; these figures mean nothing."]
    return lines


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
        "database": f"{o.db_name} (scratch, {'kept' if o.keep_db else 'dropped at the end'})",
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
    for r in run.results:
        lat = r.latency_ms
        statuses = ", ".join(f"{code}: {n:,}" for code, n in sorted(r.statuses.items()))
        errors = ", ".join(f"{k} {v}" for k, v in r.errors.items() if v and k != "status") or "none"
        lines.append(
            f"| {r.scenario.name} ({r.scenario.expected}) | {r.scenario.connections} | {r.rate():,.1f} | "
            f"{r.expected_rate:,.1f} | {lat['p50']:.1f} | {lat['p90']:.1f} | {lat['p99']:.1f} | {lat['max']:.1f} | "
            f"{statuses} | {errors} | {r.wrapped} |"
        )
    odd = [(r, code, body) for r in run.results for code, body in r.samples.items() if int(code) != r.scenario.expected]
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
        "| scenario | conn | answers | gunicorn ms | postgres ms | redis ms | server total ms | wrk ms |"
        " other DBs ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in [*run.results, *([run.flash] if run.flash else [])]:
        c = r.cpu_ms_per_request()
        lines.append(
            f"| {r.scenario.name} | {r.scenario.connections} | {sum(r.statuses.values()):,} | {c['gunicorn']:.3f} | "
            f"{c['postgres']:.3f} | {c['redis']:.3f} | **{c['server total']:.3f}** | {c['wrk']:.3f} | "
            f"{c['postgres-other-db']:.3f} |"
        )
    return lines


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
        "last answer after": f"{sale.last_answer_seconds:.2f} s",
        "answers 201 / 409 / 503 / other": " / ".join(f"{sale.counts[k]:,}" for k in ("201", "409", "503", "other")),
        "booking attempts (users retried after a 503)": f"{sale.attempts:,} ({sale.retried_users:,})",
        "unanswered at the end": f"{result.unanswered}",
        "throughput (answers per second over the sale)": f"{result.rate():,.1f}",
        "latency p50 / p95 / p99 / max": " / ".join(f"{sale.latency_ms[k]:.1f}" for k in ("p50", "p95", "p99", "max"))
        + " ms",
        "in the database afterwards: issued_count, confirmed": f"{run.flash_db[0]:,}, {run.flash_db[1]:,}",
    }
    lines += ["| | |", "| --- | --- |", *[f"| {k} | {v} |" for k, v in rows.items()], ""]
    for name, title in (
        ("flash-throughput", "Answers per second by status, and seats sold"),
        ("flash-latency", "Latency percentiles over time"),
        ("scenarios", "Throughput and p99 per scenario"),
        ("cpu", "CPU per request by component"),
    ):
        if name in run.plots:
            lines += [f"![{title}]({run.plots[name].relative_to(out)})", ""]
    return lines


def _round_trips(run) -> list[str]:
    lines = [
        "## Round trips per request",
        "",
        "One request of each kind sent through the app in the benchmark process (Django's test client, each by "
        "a new user, so the per-process user cache misses as it does for every flash-sale user), counting SQL "
        "statements and Redis commands. The sold-out request is sent twice: the first may find no sold-out "
        "flag in Redis and take the locks; the second is answered from the flag.",
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
