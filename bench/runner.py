"""The flash-sale benchmark from start to end: scratch database, server, seed, scenarios, report."""

import os
import runpy
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench import analysis, checks, load, metrics, plots, procs, profiling, report, scale, seed, waiting_room
from scripts import harness
from scripts.harness import database, processes, redis_keys

ROOT = Path(__file__).resolve().parent.parent
GUNICORN_CONF = ROOT / "bench" / "gunicorn_conf.py"
SCENARIOS = (
    # name, method, path (tickets filled in later), expected status, needs tokens
    ("healthz", "GET", "/healthz", 200, False),
    ("auth-me", "GET", "/api/v1/auth/me/", 200, True),
    ("booking", "POST", "/api/v1/tickets/{hot}/reserve/", 201, True),
    ("sold-out", "POST", "/api/v1/tickets/{sold_out}/reserve/", 409, True),
)
# py-spy modes per scenario with --profile, one worker each, at the highest concurrency.
PROFILED = {"auth-me": ("gil",), "booking": ("gil", "wall"), "sold-out": ("gil",)}


@dataclass(frozen=True)
class Options:
    quick: bool
    workers: int
    duration: float
    connections: list[int]
    out: Path
    users: int
    flash_users: int
    flash_seats: int
    flash_connections: int
    db_name: str
    postgres_url: str
    redis_url: str
    redis_prefix: str
    keep_db: bool
    profile: bool
    warmup: bool
    max_requests: int
    # The scale-out scenario (None: not run): sync workers per FastTicket process of the stack.
    stack_workers: int | None = 2
    # The waiting-room scenario (None: not run).
    crowd: waiting_room.Settings | None = None

    @property
    def level(self) -> int:
        """The concurrency the ratios are taken at: 64, or the highest level run."""
        return 64 if 64 in self.connections else max(self.connections)


@dataclass
class Run:
    """Everything measured, for the report."""

    options: Options
    started: datetime
    port: int
    env_shown: dict[str, str]
    gunicorn: dict[str, object]
    versions: dict[str, str] = field(default_factory=dict)
    seeded: seed.Seeded | None = None
    results: list[load.Result] = field(default_factory=list)
    flash: load.Result | None = None
    sale: analysis.FlashSale | None = None
    flash_db: tuple[int, int] = (0, 0)
    room: waiting_room.WaitingRoom | None = None
    stack: scale.ScaleOut | None = None
    # issued_count and confirmed reservations of each booking scenario's ticket, by scenario name and level.
    hot_db: dict[str, tuple[int, int]] = field(default_factory=dict)
    invariants: tuple[int, str] = (1, "not run")
    round_trips: list[profiling.RoundTrips] = field(default_factory=list)
    profiles: list[profiling.Profile] = field(default_factory=list)
    plots: dict[str, Path] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    server_log: list[tuple[str, int]] = field(default_factory=list)
    wall_seconds: float = 0.0
    load_at_start: str = field(default_factory=report.load_average)


def run(options: Options) -> int:
    """Run the whole benchmark; return the exit code (non-zero when a guarantee failed)."""
    load.require_wrk()
    signal.signal(signal.SIGTERM, _terminate)
    bench = Bench(options)
    try:
        bench.prepare()
        bench.scenarios()
        bench.flash_sale()
        bench.waiting_room()
        bench.single_server_done()
        bench.scale_out()
        bench.finish()
    finally:
        bench.clean_up()
    for warning in bench.run.warnings:
        _log(f"warning: {warning}")
    for failure in bench.run.failures:
        _log(f"FAILED: {failure}")
    return 1 if bench.run.failures else 0


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


class Bench:
    """One run; every process it starts is in `owned` and stopped in clean_up()."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.started = time.monotonic()
        stamp = datetime.now(UTC)
        self.work_dir = ROOT / "bench" / "out" / f"run-{stamp:%Y%m%d-%H%M%S}-{os.getpid()}"
        self.work_dir.mkdir(parents=True, exist_ok=True)
        options.out.mkdir(parents=True, exist_ok=True)
        # Bound now, so the report knows the port; gunicorn gets the socket itself (fd://N).
        listener = harness.bound_socket()
        port = listener.getsockname()[1]
        self.env = server_env(options, port)
        # /metrics adds up every worker (prometheus_client's multiprocess mode); only the server
        # writes there (the seeding process books the sold-out ticket's seat without it).
        self.server_env = {**self.env, "PROMETHEUS_MULTIPROC_DIR": str(self.work_dir / "metrics")}
        shown = {k: v for k, v in self.env.items() if k.startswith(("DJANGO_", "THROTTLE_", "REDIS_", "JWT_"))}
        shown["DATABASE_URL"] = self.env["DATABASE_URL"]
        shown["PROMETHEUS_MULTIPROC_DIR"] = "<the run's work dir>/metrics"
        shown["DJANGO_SECRET_KEY"] = "<random, 50 bytes>"
        self.run = Run(options, stamp, port, shown, gunicorn_settings(self.env))
        self.owned = procs.Owned()
        self.db_created = False
        self.server = harness.Gunicorn(
            log_path=self.work_dir / "gunicorn.log",
            env=self.server_env,
            workers=options.workers,
            config=GUNICORN_CONF,
            ready_path="/readyz",
            listener=listener,
        )
        self.server.start_timeout = 120
        self.server.stop_timeout = 15
        self.cpu: procs.CpuWindow | None = None
        self.tickets: dict[str, str] = {}

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.run.port}"

    def prepare(self) -> None:
        """Create and migrate the database, start the server, seed, wait until it is ready."""
        o = self.options
        _log(f"scratch database {o.db_name}, port {self.run.port}, work dir {self.work_dir.relative_to(ROOT)}")
        database.recreate(self.env["DATABASE_URL"])
        self.db_created = True
        harness.delete_keys(o.redis_url, o.redis_prefix)
        database.migrate(self.env)
        # Seeding runs while the workers boot.
        self.server.start(wait=False)
        seed.django_setup(self.env, ROOT)
        self.run.seeded = seed.users_with_tokens(count=o.users, tokens_file=self.work_dir / "tokens.txt")
        _log(f"seeded {self.run.seeded.users} users with tokens in {self.run.seeded.seconds:.1f} s")
        self.tickets = _tickets(o)
        seed.close_connections()
        self.server.wait_until_ready()
        _log(f"gunicorn {self.server.pid} ready with workers {self.server.worker_pids()}")
        self.cpu = procs.CpuWindow(roots={self.server.pid: "gunicorn"}, database=o.db_name)
        if o.warmup:
            self._warm_up()

    def scenarios(self) -> None:
        """Run every scenario at every concurrency level."""
        for connections in self.options.connections:
            for name, method, path, expected, tokens in SCENARIOS:
                path = path.format(hot=self.tickets[f"hot-{connections}"], sold_out=self.tickets["sold-out"])
                scenario = load.Scenario(name, method, path, expected, connections, self.options.duration, tokens)
                spies = self._start_profiles(scenario)
                result = self._load(scenario)
                self.run.profiles += [p for p in (profiling.finish(spy, self.owned) for spy in spies) if p]
                self.run.results.append(result)
                _log(_line(result))

    def flash_sale(self) -> None:
        """Let every flash-sale user book once, all at the same time, and read the seats back."""
        o = self.options
        path = f"/api/v1/tickets/{self.tickets['flash']}/reserve/"
        scenario = load.Scenario("flash-sale", "POST", path, 201, o.flash_connections, 0, True, o.flash_users, True)
        self.run.flash = self._load(scenario, flash_deadline=max(120, o.flash_users / 20))
        self.run.sale = analysis.flash_sale(self.run.flash, users=o.flash_users, seats=o.flash_seats)
        _log(_line(self.run.flash))
        self.run.flash_db = seed.confirmed_seats(self.tickets["flash"])

    def waiting_room(self) -> None:
        """A crowd joins a sale with a waiting room before it opens, asks, then follows its places and books."""
        settings = self.options.crowd
        if settings is None:
            return
        o = self.options
        sold_out = _result(self.run.results, "sold-out", o.level)
        opens_in = waiting_room.opens_in(settings, join_rate=sold_out.rate(409), ask_seconds=o.duration)
        ticket = self.tickets["waiting-room"] = seed.waiting_room_ticket(
            title="Waiting-room sale",
            quantity=settings.seats,
            admit_per_minute=settings.admit_per_minute,
            admission_seconds=settings.admission_seconds,
            opens_in=opens_in,
        )
        seed.close_connections()
        room = self.run.room = waiting_room.WaitingRoom(settings, opening=time.time() + opens_in)
        _log(f"waiting room: the sale opens in {opens_in:.1f} s; the crowd joins its queue")
        path = f"/api/v1/tickets/{ticket}/queue/"
        join = load.Scenario("queue-join", "POST", path, 201, o.level, 0, True, settings.users, True)
        room.join = self._load(join, flash_deadline=max(120, settings.users / 20))
        _log(_line(room.join))
        ask = load.Scenario("queue-ask", "GET", path, 200, o.level, o.duration, True, settings.users)
        room.ask = self._load(ask)
        room.floods_done = time.time()
        _log(_line(room.ask))
        waiting_room.run_crowd(
            room,
            base_url=self.base_url,
            ticket_id=ticket,
            tokens_file=self.run.seeded.tokens_file,
            schedule=waiting_room.schedule_of(room.join, settings.users),
            work_dir=self.work_dir,
            owned=self.owned,
            cpu=self.cpu,
        )
        room.db = seed.confirmed_seats(ticket)
        _log(
            f"waiting room: {room.seats_sold} seats, the last {_seconds(room.opening_to_last_seat)} after the "
            f"opening; every place told sold_out {_seconds(room.sold_out_after_last_seat)} after it; "
            f"{room.admitted_not_201} admitted users without a seat"
        )

    def single_server_done(self) -> None:
        """Count round trips in process, read the booking tickets back, stop the single gunicorn."""
        r = self.run
        r.round_trips = _round_trips(self.tickets, self.options)
        for result in r.results:
            if result.scenario.name == "booking":
                r.hot_db[f"booking c{result.scenario.connections}"] = seed.confirmed_seats(
                    self.tickets[f"hot-{result.scenario.connections}"]
                )
        seed.close_connections()
        self.server.stop()

    def scale_out(self) -> None:
        """The hot-ticket booking and /healthz through nginx and three FastTicket processes."""
        o = self.options
        if o.stack_workers is None:
            return
        _log(f"scale-out: starting the stack (nginx, 3 x {o.stack_workers} workers, PgBouncer)")
        self.run.stack = scale.run(
            env=self.env,
            redis_url=o.redis_url,
            redis_prefix=o.redis_prefix,
            work_dir=self.work_dir,
            workers=o.stack_workers,
            connections=o.level,
            duration=o.duration,
            hot_ticket=self.tickets["hot-stack"],
            database=o.db_name,
            load=self._load,
            warm_up=o.warmup,
        )
        for result in self.run.stack.results:
            _log(_line(result))
        self.run.hot_db["stack booking"] = seed.confirmed_seats(self.tickets["hot-stack"])
        seed.close_connections()

    def finish(self) -> None:
        """Count round trips, stop the server, check the invariants, write plots and the report."""
        r = self.run
        self.server.stop()
        self.owned.stop_all()
        r.invariants = self._manage("check_invariants")
        _log(f"check_invariants: exit {r.invariants[0]}: {r.invariants[1]}")
        r.versions = _versions(self.options, self.env["DATABASE_URL"])
        r.failures = checks.failures(r)
        r.warnings = checks.warnings(r)
        r.server_log = checks.server_log(self.work_dir / "gunicorn.log")
        r.plots = _plots(r, self.options.out, report.basename(r.started))
        r.wall_seconds = time.monotonic() - self.started
        _log(f"report: {report.write(r, self.options.out)}")

    def clean_up(self) -> None:
        """Stop everything started, drop the database and the Redis keys; also after an error."""
        self.server.stop()
        self.owned.stop_all()
        try:
            seed.close_connections()
        except Exception as exc:  # cleanup must go on; Django may not be set up
            _log(f"closing connections: {exc}")
        (self.work_dir / "tokens.txt").unlink(missing_ok=True)
        harness.delete_keys(self.options.redis_url, self.options.redis_prefix)
        if self.db_created and not self.options.keep_db:
            database.drop(self.env["DATABASE_URL"])

    def _manage(self, *args: str) -> tuple[int, str]:
        done = processes.manage(*args, env=self.env, timeout=600)
        return done.returncode, processes.output_of(done)

    def _load(
        self,
        scenario: load.Scenario,
        flash_deadline: float = 0.0,
        *,
        base_url: str | None = None,
        cpu: procs.CpuWindow | None = None,
    ) -> load.Result:
        """Run a scenario with wrk; against the single gunicorn, with the engine's figures from /metrics."""
        direct = base_url is None
        before = metrics.read(self.base_url) if direct else None
        result = load.run(
            scenario,
            base_url=base_url or self.base_url,
            tokens_file=self.run.seeded.tokens_file,
            work_dir=self.work_dir,
            owned=self.owned,
            cpu=cpu or self.cpu,
            threads=os.cpu_count() or 2,
            flash_deadline=flash_deadline,
        )
        if direct:
            result.engine = metrics.Engine.between(before, metrics.settled(self.base_url))
        return result

    def _warm_up(self) -> None:
        """Let every worker import and connect before anything is measured."""
        connections = max(self.options.workers * 2, 4)
        for name, method, path, tokens in (
            ("warmup-healthz", "GET", "/healthz", False),
            ("warmup-me", "GET", "/api/v1/auth/me/", True),
            ("warmup-booking", "POST", f"/api/v1/tickets/{self.tickets['warmup']}/reserve/", True),
        ):
            self._load(load.Scenario(name, method, path, 200, connections, 1.0, tokens))

    def _start_profiles(self, scenario: load.Scenario) -> list[profiling.Spy]:
        if not self.options.profile or scenario.connections != max(self.options.connections):
            return []
        workers = self.server.worker_pids()
        seconds = max(1, int(scenario.duration) - 1)
        return [
            profiling.start(
                scenario=scenario.name, mode=mode, pid=pid, seconds=seconds, work_dir=self.work_dir, owned=self.owned
            )
            for mode, pid in zip(PROFILED.get(scenario.name, ()), workers, strict=False)
        ]


def server_env(options: Options, port: int) -> dict[str, str]:
    """Return the environment of the server, manage.py and the seeding process."""
    return harness.server_env(
        database_url=database.database_url(options.postgres_url, options.db_name),
        redis_url=options.redis_url,
        redis_prefix=options.redis_prefix,
        secret_key=harness.random_secret_key(),
        throttles_off=True,
        DJANGO_PASSWORD_HASHERS=None,
        # Tokens are minted before the run; they must outlive it.
        JWT_ACCESS_MINUTES="240",
        # What the report shows; gunicorn serves on the socket bound at this address (--bind fd://N).
        BENCH_GUNICORN_BIND=f"127.0.0.1:{port}",
        BENCH_GUNICORN_WORKERS=str(options.workers),
        BENCH_GUNICORN_MAX_REQUESTS=str(options.max_requests),
        QUEUE_POLL_BUDGET=str(options.crowd.poll_budget) if options.crowd else None,
    )


def gunicorn_settings(env: dict[str, str]) -> dict[str, object]:
    """Return the gunicorn settings the server runs with, as the benchmark's config file yields them."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        values = runpy.run_path(str(GUNICORN_CONF))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    names = ("bind", "workers", "worker_class", "timeout", "graceful_timeout", "keepalive", "max_requests")
    names += ("accesslog", "errorlog", "loglevel", "worker_tmp_dir")
    return {name: values.get(name, "(gunicorn default)") for name in names}


def _tickets(options: Options) -> dict[str, str]:
    from tickets.models import MAX_QUANTITY

    tickets = {
        f"hot-{c}": seed.ticket(title=f"Hot ticket ({c} connections)", quantity=MAX_QUANTITY)
        for c in options.connections
    }
    tickets["warmup"] = seed.ticket(title="Warm-up", quantity=MAX_QUANTITY)
    tickets["sold-out"] = seed.sold_out_ticket(title="Sold out")
    tickets["flash"] = seed.ticket(title="Flash sale", quantity=options.flash_seats)
    tickets["hot-stack"] = seed.ticket(title="Hot ticket (through the stack)", quantity=MAX_QUANTITY)
    return tickets


def _round_trips(tickets: dict[str, str], options: Options) -> list[profiling.RoundTrips]:
    """Count the SQL statements and Redis commands of one request of each kind, in this process."""
    from django.contrib.auth.hashers import make_password
    from rest_framework_simplejwt.tokens import AccessToken

    from accounts.models import User

    unusable = make_password(None)

    def token() -> str:
        # A new user each time: the flash sale's users are all new to the workers' user cache.
        n = User.objects.filter(username__startswith="bench-probe").count()
        probe = User.objects.create(username=f"bench-probe{n}", email=f"probe{n}@bench.invalid", password=unusable)
        return str(AccessToken.for_user(probe))

    hot = tickets[f"hot-{max(options.connections)}"]
    sold_out = f"/api/v1/tickets/{tickets['sold-out']}/reserve/"
    return [
        profiling.round_trips(path="/api/v1/auth/me/", token=token(), method="get"),
        profiling.round_trips(path=f"/api/v1/tickets/{hot}/reserve/", token=token()),
        profiling.round_trips(path=sold_out, token=token()),
        profiling.round_trips(path=sold_out, token=token()),
    ]


def _versions(options: Options, database_url: str) -> dict[str, str]:
    import django
    import gunicorn
    import matplotlib
    import psycopg
    import rest_framework
    import rest_framework_simplejwt

    return {
        "Python": sys.version.split()[0],
        "Django": django.get_version(),
        "Django REST framework": rest_framework.VERSION,
        "simplejwt": getattr(rest_framework_simplejwt, "__version__", "?"),
        "gunicorn": gunicorn.__version__,
        "psycopg": psycopg.__version__,
        "PostgreSQL": database.server_version(database_url),
        "Redis": redis_keys.server_version(options.redis_url),
        "wrk": load.wrk_version(),
        "matplotlib": matplotlib.__version__,
    }


def _plots(run: Run, out: Path, base: str) -> dict[str, Path]:
    paths = {"scenarios": out / f"{base}-scenarios.png", "cpu": out / f"{base}-cpu.png"}
    plots.scenario_bars(run.results, paths["scenarios"])
    plots.cpu_bars(run.results + ([run.flash] if run.flash else []), paths["cpu"])
    if run.room is not None and run.room.flow:
        paths["waiting-room"] = out / f"{base}-waiting-room.png"
        plots.waiting_room(run.room, paths["waiting-room"])
    if run.sale is not None and run.sale.attempts:
        paths["flash-throughput"] = out / f"{base}-flash-throughput.png"
        paths["flash-latency"] = out / f"{base}-flash-latency.png"
        plots.flash_throughput(run.sale, paths["flash-throughput"])
        plots.flash_latency(run.sale, paths["flash-latency"])
    return paths


def _line(result: load.Result) -> str:
    statuses = " ".join(f"{code}:{n}" for code, n in sorted(result.statuses.items()))
    cpu = result.cpu_ms_per_request()
    return (
        f"{result.scenario.name:<10} c{result.scenario.connections:<4} {result.rate():8.1f} req/s  "
        f"p50 {result.latency_ms['p50']:7.1f} ms  p99 {result.latency_ms['p99']:7.1f} ms  [{statuses}]  "
        f"server CPU {cpu['server total']:.2f} ms/req"
    )


def _result(results: list[load.Result], name: str, connections: int) -> load.Result:
    return next(r for r in results if r.scenario.name == name and r.scenario.connections == connections)


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f} s"


def _log(message: str) -> None:
    print(f"[bench {datetime.now():%H:%M:%S}] {message}", flush=True)
