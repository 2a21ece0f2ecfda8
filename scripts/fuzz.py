"""Fuzz the API from its OpenAPI schema with schemathesis, once as staff and once as a normal user.

Run from the repository root with the project's venv: `python scripts/fuzz.py [--port 8180]`.
It builds a scratch database (`ft_fuzz`), seeds a staff user, a normal user and two tickets,
serves the app with gunicorn (DEBUG off, HTTPS off, throttles off) and runs schemathesis with every
check against /api/schema/. It exits non-zero on any failure and always stops gunicorn, drops the
database and deletes its Redis keys. Reports (JUnit, and the server's log) go to a temporary folder
whose path is printed.
"""

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "ft_fuzz"
PG_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/15"
REDIS_KEY_PREFIX = "ft-fuzz"
PASSWORD = "fuzz-Secret-passphrase-42"

# positive_data_acceptance expects every schema-valid body to be accepted. These operations also
# apply rules that no JSON schema can state (API.md: Django's password validators, a unique
# username and email, the caller's current password, an event time in the future, a quantity not
# below the seats issued), so a 400 from them is the contract, not a schema error. Every other
# check still runs on them.
BUSINESS_RULE_OPERATIONS = [
    ("POST", "/api/v1/auth/signup/"),
    ("POST", "/api/v1/auth/password/"),
    ("POST", "/api/v1/tickets/"),
    ("PUT", "/api/v1/tickets/{id}/"),
    ("PATCH", "/api/v1/tickets/{id}/"),
]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8180)
    parser.add_argument("--max-examples", type=int, default=50, help="schemathesis cases per operation and phase")
    parser.add_argument(
        "--workers", default="1", help="schemathesis workers (threads; 1 avoids a CPython 3.11 compile race)"
    )
    parser.add_argument("--seed", type=int, default=None, help="fix the generation seed to replay a run")
    parser.add_argument("extra", nargs="*", help="more schemathesis options, after `--`")
    return parser.parse_args()


def server_env() -> dict[str, str]:
    """Return the environment of the app under test: production-like, throttles off."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "fastticket.settings",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_HTTPS": "false",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "REDIS_URL": REDIS_URL,
        "REDIS_KEY_PREFIX": REDIS_KEY_PREFIX,
        "THROTTLE_ANON": "off",
        "THROTTLE_USER": "off",
        "THROTTLE_AUTH": "off",
        "THROTTLE_BOOKING": "off",
        # Long enough that the tokens minted below outlive both runs.
        "JWT_ACCESS_MINUTES": "120",
    }


def recreate_database() -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def drop_database() -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


def delete_redis_keys() -> None:
    """Delete the run's keys: the cache's and python-redis-lock's (`lock:<name>`, `lock-signal:<name>`)."""
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    for pattern in (f"{REDIS_KEY_PREFIX}:*", f"lock:{REDIS_KEY_PREFIX}:*", f"lock-signal:{REDIS_KEY_PREFIX}:*"):
        keys = list(client.scan_iter(match=pattern, count=1000))
        if keys:
            client.delete(*keys)


SEED = """
import json
from datetime import timedelta
from django.core.management import call_command
from django.utils import timezone
from rest_framework_simplejwt.tokens import RefreshToken
from accounts.services import user_create
from tickets.services import ticket_create
from reservations.services import reservation_create

call_command("migrate", verbosity=0, interactive=False)
staff = user_create(username="fuzz-staff", email="staff@fuzz.example", password={password!r}, is_staff=True)
user = user_create(username="fuzz-user", email="user@fuzz.example", password={password!r})
soon = timezone.now() + timedelta(days=7)
open_ticket = ticket_create(title="Fuzz concert", quantity=50, event_time=soon)
ticket_create(title="Fuzz matinee", quantity=1, event_time=soon + timedelta(hours=3))
reservation_create(user=user, ticket_id=open_ticket.pk)
print(json.dumps({{
    "staff": str(RefreshToken.for_user(staff).access_token),
    "user": str(RefreshToken.for_user(user).access_token),
}}))
"""


def seed(env: dict[str, str]) -> dict[str, str]:
    """Migrate the scratch database, create the users and tickets; return their access tokens."""
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", SEED.format(password=PASSWORD)],
        cwd=ROOT,
        env=env,
        check=False,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(f"seeding the scratch database failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def start_server(env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen:
    """Start gunicorn on the port and wait until /healthz answers."""
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "fastticket.wsgi:application",
                f"--bind=127.0.0.1:{port}",
                "--workers=2",
                "--timeout=30",
                # Unlimited request line: the fuzzer tests the app's answers, while gunicorn's own
                # HTML 414 for a URL over 4 KiB is a limit of the server in front.
                "--limit-request-line=0",
                "--access-logfile=-",
                # The default control socket is one path per machine, shared with other servers.
                "--no-control-socket",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.returncode}; see {log_path}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                if response.status == 200:
                    return server
        except OSError:
            time.sleep(0.3)
    stop_server(server)
    raise RuntimeError(f"gunicorn did not answer /healthz within 30 s; see {log_path}")


def stop_server(server: subprocess.Popen) -> None:
    """Stop gunicorn's master by pid (it stops its workers); kill it if it lingers."""
    if server.poll() is not None:
        return
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def write_config(path: Path) -> Path:
    """Write the schemathesis.toml: every check, positive_data_acceptance scoped as BUSINESS_RULE_OPERATIONS says."""
    blocks = ["[checks]\nenabled = true\n"]
    blocks += [
        f'[[operations]]\ninclude-method = "{method}"\ninclude-path = "{route}"\n'
        "checks.positive_data_acceptance.enabled = false\n"
        for method, route in BUSINESS_RULE_OPERATIONS
    ]
    path.write_text("\n".join(blocks))
    return path


def schemathesis_command() -> str:
    command = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or shutil.which("schemathesis")
    if command is None:
        raise SystemExit("schemathesis is not installed: pip install schemathesis (see requirements-dev.txt)")
    return command


def run_schemathesis(*, port: int, token: str, persona: str, args: argparse.Namespace, report_dir: Path) -> int:
    """Run every schemathesis check (see write_config) against the live schema with this persona's token."""
    command = [
        schemathesis_command(),
        f"--config-file={report_dir / 'schemathesis.toml'}",
        "run",
        f"http://127.0.0.1:{port}/api/schema/",
        f"--max-examples={args.max_examples}",
        f"--workers={args.workers}",
        "--request-timeout=15",
        "--generation-database=none",
        "--no-color",
        "--report=junit",
        f"--report-dir={report_dir / persona}",
        "--header",
        f"Authorization: Bearer {token}",
    ]
    if args.seed is not None:
        command.append(f"--seed={args.seed}")
    command += args.extra
    print(f"\n=== schemathesis as {persona} ===", flush=True)
    return subprocess.run(command, cwd=report_dir, check=False).returncode


def main() -> int:
    args = parse_args()
    schemathesis_command()
    os.chdir(ROOT)
    started = time.monotonic()
    report_dir = Path(tempfile.mkdtemp(prefix="ft-fuzz-"))
    env = server_env()
    server = None
    failures: list[str] = []
    try:
        write_config(report_dir / "schemathesis.toml")
        recreate_database()
        tokens = seed(env)
        server = start_server(env, args.port, report_dir / "gunicorn.log")
        for persona in ("staff", "user"):
            if run_schemathesis(
                port=args.port, token=tokens[persona], persona=persona, args=args, report_dir=report_dir
            ):
                failures.append(persona)
    finally:
        if server is not None:
            stop_server(server)
        drop_database()
        delete_redis_keys()
    elapsed = time.monotonic() - started
    print(f"\nreports and server log: {report_dir}")
    if failures:
        print(f"FUZZ FAILED as {', '.join(failures)} in {elapsed:.0f} s")
        return 1
    print(f"FUZZ OK as staff and user in {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
