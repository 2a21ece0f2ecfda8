"""The scale-out scenario: the hot-ticket booking and /healthz through the production topology.

scripts/harness/stack.py's `Stack` on this machine: nginx in front of three FastTicket processes
(gunicorn.conf.py, `--stack-workers` sync workers each), PgBouncer in transaction mode, the run's
database and Redis prefix. It runs after the single gunicorn has stopped, so both have the
machine to themselves; the report divides the two topologies' figures of the same run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import metrics
from bench.load import Result, Scenario
from bench.procs import CpuWindow
from scripts.harness.stack import Stack


@dataclass
class ScaleOut:
    processes: int
    workers: int
    healthz: Result | None = None
    booking: Result | None = None
    described: str = ""
    hot_db: tuple[int, int] = (0, 0)  # issued_count, confirmed of its hot ticket afterwards
    results: list[Result] = field(default_factory=list)


def run(
    *,
    env: dict[str, str],
    redis_url: str,
    redis_prefix: str,
    work_dir: Path,
    workers: int,
    connections: int,
    duration: float,
    hot_ticket: str,
    database: str,
    load: Callable[..., Result],
    warm_up: bool,
) -> ScaleOut:
    """Start the stack on the run's database, measure /healthz and the booking, stop it."""
    stack = Stack(
        database_url=env["DATABASE_URL"],
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        run_dir=work_dir / "stack",
        workers=workers,
        secret_key=env["DJANGO_SECRET_KEY"],
        throttles_off=True,
        env=env,
        # /metrics of each process, read straight from loopback (nginx keeps it off the proxy).
        METRICS_ALLOWED_CIDRS="127.0.0.1/32",
        # As the single gunicorn runs (bench/gunicorn_conf.py has no access log).
        GUNICORN_ACCESSLOG="/dev/null",
    )
    found = ScaleOut(processes=len(stack.web), workers=workers)
    with stack:
        found.described = stack.describe()
        roots = {web.pid: "gunicorn" for web in stack.web}
        roots[stack.nginx.pid] = "nginx"
        roots[stack.pgbouncer.pid] = "pgbouncer"
        cpu = CpuWindow(roots=roots, database=database)
        direct = [web.url for web in stack.web]
        if warm_up:
            load(Scenario("stack-warmup", "GET", "/healthz", 200, connections, 2.0, False), base_url=stack.url, cpu=cpu)
        for name, method, path, expected, tokens in (
            ("stack healthz", "GET", "/healthz", 200, False),
            ("stack booking", "POST", f"/api/v1/tickets/{hot_ticket}/reserve/", 201, True),
        ):
            before = metrics.read(direct)
            result = load(
                Scenario(name, method, path, expected, connections, duration, tokens), base_url=stack.url, cpu=cpu
            )
            result.engine = metrics.Engine.between(before, metrics.settled(direct))
            found.results.append(result)
        found.healthz, found.booking = found.results
    return found
