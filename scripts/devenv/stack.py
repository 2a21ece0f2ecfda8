"""`./dev stack`: the production topology on this machine (scripts/harness/stack.py), until Ctrl-C or SIGTERM.

nginx on http://127.0.0.1:8080 (`--port`) in front of three FastTicket processes (gunicorn with
gunicorn.conf.py), PgBouncer in transaction mode, and the PostgreSQL and Redis that ./dev finds or
embeds; production settings (DEBUG off, plain HTTP). nginx and PgBouncer are Debian's packages,
installed here when missing (as root, with apt-get).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from scripts.devenv import LauncherError, say, system
from scripts.devenv.commands import command, demo_staff_ensure
from scripts.devenv.running import manage, run
from scripts.devenv.services import DEFAULT_DATABASE_URL, Context
from scripts.harness import HOST, bound_socket, free_port, random_secret_key
from scripts.harness.stack import Stack

DEFAULT_PORT = 8080


def _arguments(args: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="./dev stack")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"nginx's port (default {DEFAULT_PORT})")
    return parser.parse_args(args)


@command(
    "stack",
    summary=(
        "the production topology on http://127.0.0.1:8080 (--port N): nginx, three FastTicket\n"
        "processes, PgBouncer (transaction mode), PostgreSQL and Redis; DEBUG off, plain HTTP"
    ),
    takes_args=True,
    usage="[--port N]",
)
def stack(context: Context, args: list[str]) -> int:
    """Prepare the database as `serve` does, then run the stack until the launcher is stopped."""
    options = _arguments(args)
    try:
        bound_socket(HOST, options.port).close()
    except OSError as error:
        raise LauncherError(
            f"port {options.port} on {HOST} is taken ({error.strerror}): "
            f"choose another, e.g. ./dev stack --port {free_port()}"
        ) from None
    system.debian_packages_ensure(system.STACK, needed_by="./dev stack", required=True)
    env = context.env
    env.setdefault("DJANGO_DEBUG", "false")
    env.setdefault("DJANGO_HTTPS", "false")
    if not env.get("DJANGO_SECRET_KEY"):
        env["DJANGO_SECRET_KEY"] = random_secret_key()
        say("DJANGO_SECRET_KEY is not set: using a random key for this run (logins end when it stops)")
    for step in (
        lambda: run(manage("migrate", "--noinput"), env),
        lambda: run(manage("collectstatic", "--noinput", "--verbosity", "0"), env),
        lambda: demo_staff_ensure(env),
        lambda: run(manage("seed_demo"), env),
    ):
        code = step()
        if code:
            return code
    with tempfile.TemporaryDirectory(prefix="fastticket-stack-") as run_dir:
        say(f"starting nginx, 3 FastTicket processes and PgBouncer (logs in {run_dir})")
        with Stack(
            database_url=env.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            redis_url=env.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
            redis_prefix=env.get("REDIS_KEY_PREFIX", "ft"),
            run_dir=Path(run_dir),
            port=options.port,
            env=env,
        ) as running:
            for line in running.describe().splitlines():
                say(line)
            base = running.url
            say(f"serving on {base}/  API {base}/api/v1/  admin {base}/admin/  (Ctrl-C stops it all)")
            try:
                while all(server.running() for server in running.servers()):
                    time.sleep(0.5)
            except KeyboardInterrupt:
                say("stopping the stack")
                return 0
            stopped = [server.name for server in running.servers() if not server.running()]
            say(f"{', '.join(stopped)} stopped unexpectedly; stopping the stack (logs in {run_dir})", error=True)
            return 1
