"""Measure the production topology against one gunicorn, in one run: the figures of docs/scaling.md.

    . .venv/bin/activate && python scripts/measure_stack.py            # about 2 minutes
    python scripts/measure_stack.py --duration 15 --connections 128

On a scratch database (dropped afterwards) of the PostgreSQL on 127.0.0.1:5432 and the Redis on
127.0.0.1:6379 (--postgres-url, --redis-url), it starts, one after the other:
- `direct`: one FastTicket process (gunicorn.conf.py, --workers sync workers), nothing in front;
- `stack`: scripts/harness/stack.py, nginx in front of three such processes, through PgBouncer;
and drives each with wrk (bench/wrk/bench.lua) for --duration seconds at --connections: GET
/healthz, then POST reserve on a ticket with a million seats, a new user (token) each request.
It prints one Markdown table of answers per second and the ratios between the two. All processes
share the machine's cores with wrk, PostgreSQL and Redis: compare ratios of one run, not runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import seed
from scripts.harness import ROOT, Gunicorn, delete_keys, random_secret_key, server_env
from scripts.harness import database as databases
from scripts.harness.stack import Stack

LUA = ROOT / "bench" / "wrk" / "bench.lua"
PREFIX = f"ft-measure-{os.getpid()}"


@dataclass
class Measured:
    topology: str
    scenario: str
    per_second: float
    expected: int
    statuses: dict[int, int]
    p99_ms: float


def wrk(url: str, *, method: str, tokens: Path | None, seconds: int, connections: int, work: Path) -> dict:
    """Run wrk with the benchmark's Lua script and return its JSON summary."""
    result = work / f"wrk-{os.getpid()}-{len(list(work.iterdir()))}.json"
    threads = 2
    env = {
        **os.environ,
        "BENCH_METHOD": method,
        "BENCH_TOKENS": str(tokens) if tokens else "",
        "BENCH_TOKEN_LIMIT": "0",
        "BENCH_THREADS": str(threads),
        "BENCH_RESULT": str(result),
        "BENCH_ONCE": "0",
        "BENCH_MARKERS": str(work),
    }
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout=30s", "-s", str(LUA), url]
    subprocess.run(command, env=env, cwd=work, check=True, capture_output=True, timeout=seconds + 60)
    return json.loads(result.read_text())


def measure(topology: str, base: str, *, ticket: str, tokens: Path, options, work: Path) -> list[Measured]:
    found = []
    for scenario, method, path, expected, token_file in (
        ("GET /healthz", "GET", "/healthz", 200, None),
        ("booking (201, a new user each)", "POST", f"/api/v1/tickets/{ticket}/reserve/", 201, tokens),
    ):
        # Warm every worker up first (not counted).
        wrk(base + path, method="GET", tokens=None, seconds=2, connections=options.connections, work=work)
        raw = wrk(
            base + path,
            method=method,
            tokens=token_file,
            seconds=options.duration,
            connections=options.connections,
            work=work,
        )
        statuses = {int(code): int(n) for code, n in raw["statuses"].items()}
        seconds = raw["duration_us"] / 1e6
        found.append(
            Measured(
                topology,
                scenario,
                statuses.get(expected, 0) / seconds,
                expected,
                statuses,
                raw["latency_us"].get("p99", 0) / 1000,
            )
        )
        print(f"  {topology:6} {scenario:32} {found[-1].per_second:8.0f}/s  {statuses}", flush=True)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python scripts/measure_stack.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=8, help="seconds per scenario (8)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (64)")
    parser.add_argument("--workers", type=int, default=2, help="sync workers per FastTicket process (2)")
    parser.add_argument("--users", type=int, default=8000, help="users (tokens) per topology (8000)")
    parser.add_argument("--postgres-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    options = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 1
    url = databases.database_url(options.postgres_url, f"ft_measure_{os.getpid()}")
    env = server_env(
        database_url=url,
        redis_url=options.redis_url,
        redis_prefix=PREFIX,
        secret_key=random_secret_key(),
        throttles_off=True,
        JWT_ACCESS_MINUTES="240",
        DJANGO_LOG_LEVEL="WARNING",
        GUNICORN_ACCESSLOG="/dev/null",
        GUNICORN_LOG_LEVEL="warning",
    )
    with tempfile.TemporaryDirectory(prefix="ft-measure-") as scratch_dir, databases.scratch(url):
        work = Path(scratch_dir)
        databases.migrate(env)
        seed.django_setup(env, ROOT)
        ticket = seed.ticket(title="Measured hot ticket", quantity=1_000_000)
        direct_tokens = seed.users_with_tokens(count=options.users, tokens_file=work / "direct.tokens").tokens_file
        stack_tokens = _more_users(options.users, work / "stack.tokens")
        seed.close_connections()
        results = []
        print("measuring (answers per second of the expected status):", flush=True)
        with Gunicorn(
            log_path=work / "direct.log", env=env, workers=options.workers, config=ROOT / "gunicorn.conf.py"
        ) as direct:
            results += measure("direct", direct.url, ticket=ticket, tokens=direct_tokens, options=options, work=work)
        with Stack(
            database_url=url,
            redis_url=options.redis_url,
            redis_prefix=PREFIX,
            run_dir=work / "stack",
            workers=options.workers,
            env=env,
        ) as stack:
            results += measure("stack", stack.url, ticket=ticket, tokens=stack_tokens, options=options, work=work)
        delete_keys(options.redis_url, PREFIX)
    _report(results, options)
    return 0


def _more_users(count: int, tokens_file: Path) -> Path:
    """Seed a second set of users (other names) for the second topology."""
    from django.contrib.auth.hashers import make_password
    from rest_framework_simplejwt.tokens import AccessToken

    from accounts.models import User

    password = make_password("measure-password-never-used")
    users = [
        User(username=f"stack{n:06d}", email=f"stack{n:06d}@measure.invalid", password=password) for n in range(count)
    ]
    User.objects.bulk_create(users, batch_size=5000)
    tokens_file.write_text("".join(f"{AccessToken.for_user(user)}\n" for user in users))
    return tokens_file


def _report(results: list[Measured], options) -> None:
    by = {(r.topology, r.scenario): r for r in results}
    cores = len(os.sched_getaffinity(0))
    print(
        f"\n{cores} cores, {options.connections} connections, {options.duration} s per scenario, "
        f"{options.workers} workers per process (direct: 1 process, stack: 3 behind nginx and PgBouncer)\n"
    )
    print("| scenario | one gunicorn, direct | the stack | stack ÷ direct | p99 direct | p99 stack |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for scenario in dict.fromkeys(r.scenario for r in results):
        direct, stack = by[("direct", scenario)], by[("stack", scenario)]
        ratio = stack.per_second / direct.per_second if direct.per_second else 0
        print(
            f"| {scenario} | {direct.per_second:,.0f}/s | {stack.per_second:,.0f}/s | {ratio:.2f} "
            f"| {direct.p99_ms:.0f} ms | {stack.p99_ms:.0f} ms |"
        )
    for topology in ("direct", "stack"):
        healthz = by[(topology, "GET /healthz")].per_second
        booking = by[(topology, "booking (201, a new user each)")].per_second
        print(f"\nbooking ÷ /healthz, {topology}: {booking / healthz if healthz else 0:.3f}")


if __name__ == "__main__":
    sys.exit(main())
