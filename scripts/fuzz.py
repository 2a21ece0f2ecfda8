"""Fuzz the API from its OpenAPI schema with schemathesis, once as staff and once as a normal user.

Run from the repository root with the project's venv: `python scripts/fuzz.py`.
It builds a scratch database of its own (`ft_fuzz_<pid>`, on the server of --postgres-url), seeds a
staff user, a normal user and two tickets, serves the app with gunicorn (DEBUG off, HTTPS off,
throttles off) on a port from the OS and runs schemathesis with every check against /api/schema/.
It exits non-zero on any failure and always stops gunicorn, drops the database and deletes its
Redis keys. Servers, ports and the scratch database come from scripts/harness. Reports (JUnit, and
the server's log) go to a temporary folder whose path is printed.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as `python scripts/fuzz.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts import harness
from scripts.harness import database, processes

ROOT = harness.ROOT
DB_NAME = f"ft_fuzz_{os.getpid()}"
REDIS_KEY_PREFIX = f"ft-fuzz-{os.getpid()}"
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

# ensure_resource_availability expects a resource just created (a ticket) to be found by every
# operation linked to it. The caller's place in a ticket's queue is another resource: API.md answers
# GET and DELETE of the queue with 404 while the caller holds no place, as they do on a new ticket.
CALLERS_PLACE_OPERATIONS = [
    ("GET", "/api/v1/tickets/{ticket_id}/queue/"),
    ("DELETE", "/api/v1/tickets/{ticket_id}/queue/"),
]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--postgres-url", default=os.environ.get("FUZZ_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--redis-url", default=os.environ.get("FUZZ_REDIS_URL", "redis://127.0.0.1:6379/15"))
    parser.add_argument("--max-examples", type=int, default=50, help="schemathesis cases per operation and phase")
    parser.add_argument(
        "--workers", default="1", help="schemathesis workers (threads; 1 avoids a CPython 3.11 compile race)"
    )
    parser.add_argument("--seed", type=int, default=None, help="fix the generation seed to replay a run")
    parser.add_argument("extra", nargs="*", help="more schemathesis options, after `--`")
    return parser.parse_args()


def server_env(args: argparse.Namespace) -> dict[str, str]:
    """Return the environment of the app under test: production-like, throttles off."""
    return harness.server_env(
        database_url=database.database_url(args.postgres_url, DB_NAME),
        redis_url=args.redis_url,
        redis_prefix=REDIS_KEY_PREFIX,
        secret_key=harness.random_secret_key(),
        throttles_off=True,
        # Long enough that the tokens minted below outlive both runs.
        JWT_ACCESS_MINUTES="120",
    )


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
    out = processes.manage("shell", "-c", SEED.format(password=PASSWORD), env=env)
    if out.returncode != 0:
        raise RuntimeError(f"seeding the scratch database failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def gunicorn(env: dict[str, str], log_path: Path) -> harness.Gunicorn:
    """gunicorn with 2 workers on a port from the OS, ready once /healthz answers."""
    # Unlimited request line: the fuzzer tests the app's answers, while gunicorn's own HTML 414
    # for a URL over 4 KiB is a limit of the server in front.
    options = ("--timeout=30", "--limit-request-line=0", "--access-logfile=-")
    return harness.Gunicorn(log_path=log_path, env=env, workers=2, options=options)


def write_config(path: Path) -> Path:
    """Write the schemathesis.toml: every check, scoped as BUSINESS_RULE_OPERATIONS and CALLERS_PLACE_OPERATIONS say."""
    blocks = ["[checks]\nenabled = true\n"]
    blocks += [
        f'[[operations]]\ninclude-method = "{method}"\ninclude-path = "{route}"\n'
        "checks.positive_data_acceptance.enabled = false\n"
        for method, route in BUSINESS_RULE_OPERATIONS
    ]
    blocks += [
        f'[[operations]]\ninclude-method = "{method}"\ninclude-path = "{route}"\n'
        "checks.ensure_resource_availability.enabled = false\n"
        for method, route in CALLERS_PLACE_OPERATIONS
    ]
    path.write_text("\n".join(blocks))
    return path


def schemathesis_command() -> str:
    command = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or shutil.which("schemathesis")
    if command is None:
        raise SystemExit("schemathesis is not installed: pip install schemathesis (see requirements-dev.txt)")
    return command


def run_schemathesis(*, base_url: str, token: str, persona: str, args: argparse.Namespace, report_dir: Path) -> int:
    """Run every schemathesis check (see write_config) against the live schema with this persona's token."""
    command = [
        schemathesis_command(),
        f"--config-file={report_dir / 'schemathesis.toml'}",
        "run",
        f"{base_url}/api/schema/",
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
    env = server_env(args)
    failures: list[str] = []
    write_config(report_dir / "schemathesis.toml")
    try:
        with database.scratch(env["DATABASE_URL"]):
            tokens = seed(env)
            with gunicorn(env, report_dir / "gunicorn.log") as server:
                for persona in ("staff", "user"):
                    if run_schemathesis(
                        base_url=server.url, token=tokens[persona], persona=persona, args=args, report_dir=report_dir
                    ):
                        failures.append(persona)
    finally:
        harness.delete_keys(args.redis_url, REDIS_KEY_PREFIX)
    elapsed = time.monotonic() - started
    print(f"\nreports and server log: {report_dir}")
    if failures:
        print(f"FUZZ FAILED as {', '.join(failures)} in {elapsed:.0f} s")
        return 1
    print(f"FUZZ OK as staff and user in {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
