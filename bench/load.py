"""Drive wrk: one scenario at a fixed concurrency, with the CPU every component used meanwhile."""

import json
import os
import resource
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from bench.metrics import Engine
from bench.procs import CpuWindow, Owned

LUA_SCRIPT = Path(__file__).resolve().parent / "wrk" / "bench.lua"
WRK_TIMEOUT = "30s"
# What "server CPU" adds up (nginx and PgBouncer only run in the scale-out scenario).
SERVER_COMPONENTS = ("gunicorn", "nginx", "pgbouncer", "postgres", "redis")


class Attempt(NamedTuple):
    """One traced request of a once-mode run (flash sale, joins): times in CLOCK_MONOTONIC ms."""

    sent: float
    done: float
    status: int
    attempt: int  # 1 for the user's first request, 2 after one 503...
    user: int = 0  # the user's line in the tokens file (1 = first)
    info: str = ""  # the answer's error code, or the place's status
    poll_after: int | None = None  # a place's poll_after_seconds


@dataclass(frozen=True)
class Scenario:
    name: str
    method: str
    path: str
    expected: int
    connections: int
    duration: float
    tokens: bool = True
    token_limit: int = 0
    once: bool = False


@dataclass
class Result:
    scenario: Scenario
    duration: float
    requests: int
    statuses: dict[int, int]
    latency_ms: dict[str, float]
    errors: dict[str, int]
    cpu_seconds: dict[str, float]
    wrapped: int = 0
    samples: dict[str, str] = field(default_factory=dict)
    trace: list[Attempt] = field(default_factory=list)
    unanswered: int = 0
    finished_threads: int = 0
    threads: int = 0
    # The booking engine's figures from /metrics over the scenario (bench.metrics.Engine).
    engine: Engine | None = None

    def rate(self, status: int | None = None) -> float:
        """Responses per second, all or of one status."""
        count = self.requests if status is None else self.statuses.get(status, 0)
        return count / self.duration if self.duration > 0 else 0.0

    @property
    def expected_rate(self) -> float:
        return self.rate(self.scenario.expected)

    def cpu_ms_per_request(self) -> dict[str, float]:
        """CPU milliseconds per answered request, per component and in total."""
        answered = max(1, sum(self.statuses.values()))
        per = {name: seconds * 1000 / answered for name, seconds in self.cpu_seconds.items()}
        per["server total"] = sum(per.get(name, 0.0) for name in SERVER_COMPONENTS)
        per["total with wrk"] = per["server total"] + per["wrk"]
        return per

    def unexpected_5xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500 and status != 503)


def wrk_version() -> str:
    done = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False, timeout=10)
    return (done.stdout + done.stderr).strip().splitlines()[0] if (done.stdout + done.stderr).strip() else "?"


def require_wrk() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get update && apt-get install -y wrk")


def run(
    scenario: Scenario,
    *,
    base_url: str,
    tokens_file: Path,
    work_dir: Path,
    owned: Owned,
    cpu: CpuWindow,
    threads: int,
    flash_deadline: float = 0.0,
) -> Result:
    """Run one scenario with wrk and return what it measured."""
    # One thread for the flash sale: a thread that stops while another still books leaves its
    # connections open, and gunicorn's sync workers then linger up to 2 s on each before closing.
    threads = 1 if scenario.once else max(1, min(threads, scenario.connections))
    tag = f"{scenario.name}-c{scenario.connections}"
    result_file = work_dir / f"{tag}.json"
    markers = work_dir / f"{tag}-markers"
    markers.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "BENCH_METHOD": scenario.method,
        "BENCH_TOKENS": str(tokens_file) if scenario.tokens else "",
        "BENCH_TOKEN_LIMIT": str(scenario.token_limit),
        "BENCH_THREADS": str(threads),
        "BENCH_RESULT": str(result_file),
        "BENCH_ONCE": "1" if scenario.once else "0",
        "BENCH_MARKERS": str(markers),
    }
    seconds = flash_deadline if scenario.once else scenario.duration
    args = [
        "wrk",
        f"-t{threads}",
        f"-c{scenario.connections}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={WRK_TIMEOUT}",
        "--latency",
        "-s",
        str(LUA_SCRIPT),
        base_url + scenario.path,
    ]

    def watch(process: subprocess.Popen) -> None:
        if scenario.once:
            _stop_when_answered(process, markers=markers, threads=threads, deadline=seconds)

    log = work_dir / f"{tag}.log"
    _, used = measured(args, env=env, log=log, cwd=work_dir, owned=owned, cpu=cpu, timeout=seconds + 30, watch=watch)
    used["wrk"] = used.pop("generator")
    if not result_file.is_file():
        raise RuntimeError(f"wrk wrote no result for {tag}; see {work_dir / (tag + '.log')}")
    return _result(scenario, json.loads(result_file.read_text()), used, threads)


def measured(
    args: list[str],
    *,
    env: dict[str, str] | None,
    log: Path,
    cwd: Path,
    owned: Owned,
    cpu: CpuWindow,
    timeout: float,
    watch: Callable[[subprocess.Popen], None] | None = None,
) -> tuple[int | None, dict[str, float]]:
    """Run a load generator to its end (killed after `timeout`): its exit code, and the CPU seconds
    of each component meanwhile, the generator's own (its rusage when reaped) as "generator"."""
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu.start()
    process = owned.start(args, env=env, log=log, cwd=cwd)
    try:
        if watch is not None:
            watch(process)
        process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        owned.forget(process.pid)
    used = cpu.stop()
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used["generator"] = (children_after.ru_utime - children_before.ru_utime) + (
        children_after.ru_stime - children_before.ru_stime
    )
    return process.returncode, used


def _stop_when_answered(process: subprocess.Popen, *, markers: Path, threads: int, deadline: float) -> None:
    """Interrupt wrk (it then reports) once every thread has had all its bookings answered."""
    end = time.monotonic() + deadline
    while time.monotonic() < end and process.poll() is None:
        if len(list(markers.glob("done-*"))) >= threads:
            break
        time.sleep(0.05)
    if process.poll() is None:
        process.send_signal(signal.SIGINT)


def _result(scenario: Scenario, raw: dict, used: dict[str, float], threads: int) -> Result:
    statuses = {int(code): int(n) for code, n in (raw.get("statuses") or {}).items()}
    trace = []
    for line in raw.get("trace") or []:
        sent, done, status, attempt, user, info, poll_after = line.split(",")
        trace.append(
            Attempt(float(sent), float(done), int(status), int(attempt), int(user), info, int(poll_after or 0) or None)
        )
    duration = raw["duration_us"] / 1e6
    if scenario.once and trace:
        # The flash sale ends when its last booking is answered, not when wrk is interrupted.
        duration = max(t.done for t in trace) / 1000 - min(t.sent for t in trace) / 1000
    return Result(
        scenario=scenario,
        duration=duration,
        requests=sum(statuses.values()) if scenario.once else int(raw["requests"]),
        statuses=statuses,
        latency_ms={name: value / 1000 for name, value in raw["latency_us"].items()},
        errors={name: int(n) for name, n in raw["errors"].items()},
        cpu_seconds=used,
        wrapped=int(raw.get("wrapped", 0)),
        samples={str(k): v for k, v in (raw.get("samples") or {}).items()},
        trace=trace,
        unanswered=int(raw.get("unanswered", 0)),
        finished_threads=int(raw.get("finished_threads", 0)),
        threads=threads,
    )
