"""The command line of `./dev`, built from the registry of commands."""

from __future__ import annotations

import argparse
import os

from scripts.devenv import LauncherError, requirements, say
from scripts.devenv import stack as _stack  # noqa: F401 (registers `./dev stack`)
from scripts.devenv.commands import COMMANDS
from scripts.devenv.services import Context, with_services
from scripts.harness import ROOT

TRUE_WORDS = {"1", "true", "yes", "on"}
SERVICES_HELP = (
    "services, for PostgreSQL and Redis each:\n"
    "  DATABASE_URL / REDIS_URL when set (in the environment or .env); else the server on\n"
    "  127.0.0.1:5432 / 127.0.0.1:6379 when one answers; else an embedded server (data in .data/, a port\n"
    "  from the OS), stopped when ./dev exits. --embedded or FASTTICKET_EMBEDDED=1 always uses the\n"
    "  embedded servers. A missing database is created on the server found (or ./dev says what to do).\n\n"
    "serve and manage read DJANGO_DEBUG (default true) and DJANGO_HTTPS (default false); serve reads\n"
    "PORT and DJANGO_SUPERUSER_USERNAME / _EMAIL / _PASSWORD (default admin, admin@example.com, generated)."
)


def _epilog() -> str:
    lines = ["commands:"]
    for spec in COMMANDS.values():
        head = f"  {spec.name} {spec.usage}".rstrip()
        summary = spec.summary.splitlines()
        lines.append(f"{head:<19}{summary[0]}" if len(head) < 19 else f"{head}\n{'':19}{summary[0]}")
        lines += [f"{'':19}{line}" for line in summary[1:]]
    return "\n".join(lines) + "\n\n" + SERVICES_HELP


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="./dev",
        description=(
            "Set up and run FastTicket. Each command first creates .venv and installs what it needs "
            "(serve and manage: requirements.txt; test and setup: requirements-dev.txt), again "
            "whenever those files change."
        ),
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--embedded", action="store_true", help="use embedded PostgreSQL and Redis, whatever runs")
    parser.add_argument("command", choices=list(COMMANDS), help="what to do (see below)")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="for test and manage: arguments passed on")
    args = parser.parse_args(argv)
    if args.args[:1] == ["--embedded"]:
        args.embedded = True
        args.args = args.args[1:]
    if args.args and not COMMANDS[args.command].takes_args:
        parser.error(f"{args.command} takes no arguments (got {' '.join(args.args)})")
    args.embedded = args.embedded or os.environ.get("FASTTICKET_EMBEDDED", "").strip().lower() in TRUE_WORDS
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    spec = COMMANDS[args.command]
    os.chdir(ROOT)
    try:
        requirements.ensure(spec.requirements)
        if not spec.services:
            return spec.run(Context(env=dict(os.environ), command=spec.name), args.args)
        return with_services(lambda context: spec.run(context, args.args), forced=args.embedded, name=spec.name)
    except LauncherError as error:
        say(str(error), error=True)
        return 1
