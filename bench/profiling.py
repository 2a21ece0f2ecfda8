"""Where a request's time goes: py-spy samples of one worker, and round trips counted in process."""

import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import Owned

# (label, function, file fragment): a sample counts for a phase when any of its frames matches.
# py-spy names methods Class.method; a bare name matches any class.
PHASES = [
    ("DRF view (APIView.dispatch)", "dispatch", "rest_framework/views.py"),
    ("authentication (JWT + user)", "perform_authentication", "rest_framework/views.py"),
    ("  JWT decode and verify", "get_validated_token", "rest_framework_simplejwt/authentication.py"),
    ("  user lookup (per-process cache, else SELECT)", "get_user", "accounts/authentication.py"),
    ("throttle check", "check_throttles", "rest_framework/views.py"),
    ("reservation_create (service)", "reservation_create", "reservations/services.py"),
    ("  first statement (account, ticket, seat; every refusal)", "booking_read", "reservations/batch.py"),
    ("  waiting in the ticket's line for the answer", "_wait", "reservations/services.py"),
    ("  leading a batch (the lock holder)", "_lead", "reservations/services.py"),
    ("    booking transaction (_book)", "_book", "reservations/services.py"),
    ("  metrics (prometheus_client)", "inc", "prometheus_client/metrics.py"),
    ("response serialization", "data", "rest_framework/serializers.py"),
    ("response rendering (JSON)", "render", "rest_framework/renderers.py"),
    ("exception handler (409/503 body)", "exception_handler", "fastticket/errors.py"),
    ("SQL statements (ORM to PostgreSQL and back)", "execute", "django/db/backends/utils.py"),
    ("Redis commands", "execute_command", "redis/client.py"),
    ("logging (any logger)", "handle", "logging/__init__.py"),
]
# Innermost first: a sample belongs to the first package found walking out from the innermost frame.
PACKAGES = [
    ("psycopg (PostgreSQL I/O)", ("psycopg",)),
    ("redis-py / redis_lock (Redis I/O)", ("redis",)),
    ("PyJWT / simplejwt", ("jwt",)),
    ("prometheus_client", ("prometheus_client",)),
    ("logging", ("logging/",)),
    ("Django ORM", ("django/db",)),
    ("DRF", ("rest_framework/",)),
    ("Django (other)", ("django/",)),
    ("FastTicket code", ("fastticket/", "accounts/", "tickets/", "reservations/")),
    ("gunicorn", ("gunicorn/",)),
]
FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


# py-spy's sampling modes: every sample (waits included), or only samples holding the GIL (Python on
# a CPU: psycopg and redis-py release the GIL while they wait for the server).
MODES = {"wall": ("wall clock, waits included (--idle)", "--idle"), "gil": ("holding the GIL (--gil)", "--gil")}


@dataclass
class Profile:
    """Samples of one worker, per phase (inclusive) and per package (innermost), as shares."""

    scenario: str
    mode: str
    samples: int = 0
    request_samples: int = 0
    phases: dict[str, float] = field(default_factory=dict)
    packages: dict[str, float] = field(default_factory=dict)
    top_leaves: list[tuple[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class Spy:
    scenario: str
    mode: str
    output: Path
    process: subprocess.Popen


def start(*, scenario: str, mode: str, pid: int, seconds: float, work_dir: Path, owned: Owned) -> Spy:
    """Start py-spy on a worker for a while, writing collapsed stacks (raw format)."""
    output = work_dir / f"profile-{scenario}-{mode}-{pid}.txt"
    args = [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid), MODES[mode][1]]
    args += ["--duration", str(max(1, int(seconds))), "--rate", "200", "--format", "raw", "--nonblocking"]
    args += ["--output", str(output)]
    process = owned.start(args, env=None, log=output.with_suffix(".log"), cwd=work_dir)
    return Spy(scenario=scenario, mode=mode, output=output, process=process)


def finish(spy: Spy, owned: Owned) -> Profile | None:
    """Wait for py-spy (bounded) and summarise what it recorded; None if it recorded nothing."""
    try:
        spy.process.wait(timeout=60)
    finally:
        if spy.process.poll() is None:
            spy.process.kill()
            spy.process.wait(timeout=10)
        owned.forget(spy.process.pid)
    if not spy.output.is_file():
        return None
    return summarize(spy.output, scenario=spy.scenario, mode=MODES[spy.mode][0])


def summarize(path: Path, *, scenario: str, mode: str) -> Profile:
    """Read py-spy's collapsed stacks and share them out per phase and per package."""
    profile = Profile(scenario=scenario, mode=mode)
    phases: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [m.groupdict() for m in map(FRAME.match, stack.split(";")) if m]
        profile.samples += n
        if not any(_matches(f, "handle_request", "gunicorn/workers/sync.py") for f in frames):
            continue
        profile.request_samples += n
        for label, func, fragment in PHASES:
            if any(_matches(f, func, fragment) for f in frames):
                phases[label] += n
        packages[_package(frames)] += n
        leaf = frames[-1]
        leaves[f"{leaf['func']} ({_short(leaf['file'])})"] += n
    total = max(1, profile.request_samples)
    profile.phases = {label: phases[label] / total for label, _, _ in PHASES}
    profile.phases["outside the DRF view (gunicorn, middleware, WSGI)"] = 1 - profile.phases[PHASES[0][0]]
    profile.packages = {label: n / total for label, n in packages.most_common()}
    profile.top_leaves = [(name, n / total) for name, n in leaves.most_common(12)]
    return profile


def _matches(frame: dict[str, str], func: str, fragment: str) -> bool:
    name = frame["func"]
    return (name == func or name.endswith(f".{func}")) and fragment in frame["file"]


def _package(frames: list[dict[str, str]]) -> str:
    for frame in reversed(frames):
        for label, fragments in PACKAGES:
            if any(fragment in frame["file"] for fragment in fragments):
                return label
    return "other (stdlib)"


def _short(file: str) -> str:
    return file.split("site-packages/")[-1].replace("/work/main/", "")


@dataclass(frozen=True)
class RoundTrips:
    path: str
    status: int
    sql: list[str]
    redis: list[str]


def round_trips(*, path: str, token: str, method: str = "post") -> RoundTrips:
    """Send one request through the app in this process and list its SQL and Redis commands."""
    from unittest import mock

    import redis
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    commands: list[str] = []
    original = redis.Redis.execute_command

    def counting(self, *args, **options):
        commands.append(" ".join(str(a) for a in args[:2]))
        return original(self, *args, **options)

    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {token}")
    with mock.patch.object(redis.Redis, "execute_command", counting), CaptureQueriesContext(connection) as queries:
        response = getattr(client, method)(path, content_type="application/json")
    return RoundTrips(
        path=path,
        status=response.status_code,
        sql=[" ".join(q["sql"].split())[:160] for q in queries.captured_queries],
        redis=commands,
    )
