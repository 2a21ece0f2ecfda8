"""The registry of `./dev` commands, and the commands: serve, test, manage, setup.

A command is a function `(context, args) -> exit code` registered with `@command(...)`, which
says what it installs into .venv and whether it needs PostgreSQL and Redis; `./dev --help` and
the argument parser are built from the registry. A new command (e.g. `stack`) is a module with
such functions, imported by scripts/devenv/cli.py.
"""

from __future__ import annotations

import re
import secrets
import shutil
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from scripts.devenv import LauncherError, requirements, say, system
from scripts.devenv.running import manage, run
from scripts.devenv.services import Context
from scripts.harness import HOST, ROOT, bound_socket, free_port
from scripts.harness.servers import http_status

DEFAULT_PORT = 8000
# What `./dev serve` prints, when it answers (a page that is a 404 is not announced).
LINKS = (
    ("home", "/"),
    ("API", "/api/v1/"),
    ("Swagger UI", "/api/docs/"),
    ("ReDoc", "/api/redoc/"),
    ("admin", "/admin/"),
)
READY_TIMEOUT = 60.0


@dataclass(frozen=True)
class Command:
    name: str
    run: Callable[[Context, list[str]], int]
    summary: str
    requirements: Path
    services: bool
    takes_args: bool
    usage: str


COMMANDS: dict[str, Command] = {}


def command(
    name: str,
    *,
    summary: str,
    requirements: Path = requirements.RUNTIME,
    services: bool = True,
    takes_args: bool = False,
    usage: str = "",
) -> Callable[[Callable[[Context, list[str]], int]], Callable[[Context, list[str]], int]]:
    """Register a `./dev` command: `summary` is its --help text, `usage` what follows its name there."""

    def register(function: Callable[[Context, list[str]], int]) -> Callable[[Context, list[str]], int]:
        COMMANDS[name] = Command(name, function, summary, requirements, services, takes_args, usage)
        return function

    return register


def development_env(env: dict[str, str]) -> dict[str, str]:
    """Apply the local development defaults (DEBUG on, plain HTTP) to env, keeping what it sets."""
    env.setdefault("DJANGO_DEBUG", "true")
    env.setdefault("DJANGO_HTTPS", "false")
    return env


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


def answering_links(base: str) -> list[tuple[str, str]]:
    """Return the LINKS that answer a browser below 400 (a redirect to the admin's login counts)."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    found = []
    for name, path in LINKS:
        status = http_status(host, int(port), path, accept="text/html,*/*;q=0.8")
        if status is not None and status < 400:
            found.append((name, base + path))
    return found


def announce_when_ready(child, base: str, *, timeout: float = READY_TIMEOUT) -> None:
    """Once the server answers /healthz, print the links that answer; nothing if it never does."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    deadline = time.monotonic() + timeout
    while http_status(host, int(port), "/healthz") != 200:
        if child.poll() is not None or time.monotonic() > deadline:
            return
        time.sleep(0.2)
    links = "  ".join(f"{name} {url}" for name, url in answering_links(base))
    say(f"serving on {base}/  {links}  (Ctrl-C stops everything)")


@command(
    "serve",
    summary=(
        "migrate, collect static files, create a demo staff account and demo tickets,\n"
        "then serve on http://127.0.0.1:${PORT:-8000} (gunicorn, 2 workers)"
    ),
)
def serve(context: Context, args: list[str]) -> int:
    """Migrate, collect static files, add a staff account and demo tickets, then serve with gunicorn."""
    env = development_env(context.env)
    port = int(env.get("PORT") or DEFAULT_PORT)
    try:
        listener = bound_socket(HOST, port)
    except OSError as error:
        raise LauncherError(
            f"port {port} on {HOST} is taken ({error.strerror}): stop what serves there, "
            f"or choose another port, e.g. PORT={free_port()} ./dev serve"
        ) from None
    metrics_dir = None
    try:
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
        # Every worker's counters add up in /metrics, as in the image (see gunicorn.conf.py).
        if not env.get("PROMETHEUS_MULTIPROC_DIR"):
            metrics_dir = tempfile.mkdtemp(prefix="fastticket-metrics-")
        gunicorn_env = {"WEB_CONCURRENCY": "2", **env}
        if metrics_dir:
            gunicorn_env["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        # gunicorn.conf.py logs access to stdout already; both it and gunicorn read WEB_CONCURRENCY.
        config = ["-c", "gunicorn.conf.py"] if (ROOT / "gunicorn.conf.py").is_file() else ["--access-logfile", "-"]
        fd = listener.fileno()
        gunicorn = [sys.executable, "-m", "gunicorn", *config, "fastticket.wsgi:application", f"--bind=fd://{fd}"]
        base = f"http://{HOST}:{port}"

        def started(child) -> None:
            listener.close()
            announce_when_ready(child, base)

        return run(gunicorn, gunicorn_env, pass_fds=(fd,), started=started)
    finally:
        listener.close()
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)


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


@command(
    "test",
    summary="run the whole test suite, or pytest with ARGS (e.g. ./dev test tests/smoke -q)",
    requirements=requirements.DEVELOPMENT,
    takes_args=True,
    usage="[ARGS...]",
)
def run_tests(context: Context, args: list[str]) -> int:
    """Install the Debian packages the tests use, collect static files as the tests store them, then run pytest."""
    system.debian_packages_ensure(system.TESTS, needed_by="./dev test", required=False)
    # The browser tests fetch static files through whitenoise with DEBUG off: the manifest storage.
    code = run(manage("collectstatic", "--noinput", "--verbosity", "0"), pytest_env(context.env))
    if code:
        return code
    return run([sys.executable, "-m", "pytest", *args], context.env)


@command(
    "manage",
    summary=(
        "run manage.py ARGS against the servers ./dev finds or starts, with serve's settings\n"
        "(e.g. ./dev manage createsuperuser, ./dev manage check_invariants)"
    ),
    takes_args=True,
    usage="ARGS...",
)
def run_manage(context: Context, args: list[str]) -> int:
    """Run manage.py with `args` in the foreground (it may ask questions), migrating a database just created."""
    env = development_env(context.env)
    if context.created_database and args[:1] != ["migrate"]:
        say("migrating the new database first")
        code = run(manage("migrate", "--noinput"), env)
        if code:
            return code
    return run(manage(*args), env)


@command(
    "setup",
    summary="only create or update .venv with everything the tests and tools need (and chromium, nginx, pgbouncer)",
    requirements=requirements.DEVELOPMENT,
    services=False,
)
def setup(context: Context, args: list[str]) -> int:
    system.debian_packages_ensure(system.TESTS, needed_by="the tests", required=False)
    say("the environment in .venv is ready")
    return 0
