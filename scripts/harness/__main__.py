"""The harness from a shell (.ci/deploy-check.sh): `python -m scripts.harness COMMAND ...`.

exec-with-socket --env NAME [--port-file F] -- CMD...
                   bind a port the OS picks, put `fd://N` in $NAME (gunicorn's bind) and exec
                   CMD in a session of its own, so `$!` is the server's pid and no one can take
                   the port first; the port goes to F
wait-http URL --pid PID [--timeout S] [--log F]
                   wait until URL answers 200; fail (with the log's tail) if PID exits first
stop PID [--timeout S]
                   SIGTERM PID, SIGKILL after the timeout, then SIGKILL what it left behind
free-port          print a port the OS says is free (a server binding it itself retries on failure)
db create|drop|recreate|ensure URL
                   the database of URL on its server (drop only what you created)
redis-clean URL PREFIX
                   delete the keys of a key prefix (SCAN, never FLUSHDB)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.request
from pathlib import Path

from scripts.harness import database, processes
from scripts.harness.ports import bound_socket, free_port
from scripts.harness.redis_keys import delete_keys


def _exec_with_socket(args: argparse.Namespace) -> int:
    if not args.command:
        raise SystemExit("exec-with-socket: no command after --")
    listener = bound_socket()
    port = listener.getsockname()[1]
    if args.port_file:
        temporary = Path(args.port_file).with_suffix(".tmp")
        temporary.write_text(f"{port}\n")
        temporary.rename(args.port_file)
    os.environ[args.env] = f"fd://{listener.fileno()}"
    # A group of its own: `stop` can then SIGKILL whatever the server leaves behind, and only that.
    os.setsid()
    os.execvp(args.command[0], args.command)  # noqa: S606
    return 127


def _wait_http(args: argparse.Namespace) -> int:
    deadline = time.monotonic() + args.timeout
    last = "nothing answered"
    while time.monotonic() < deadline:
        if args.pid and not processes.alive(args.pid):
            last = f"pid {args.pid} exited"
            break
        try:
            with urllib.request.urlopen(args.url, timeout=5) as response:
                if response.status == 200:
                    return 0
        except OSError as error:
            last = str(error)
        time.sleep(0.5)
    tail = processes.log_tail(Path(args.log)) if args.log else ""
    print(f"{args.url} did not answer 200 within {args.timeout:.0f} s ({last})\n{tail}", file=sys.stderr)
    return 1


def _db(args: argparse.Namespace) -> int:
    try:
        if args.action == "ensure":
            created = database.ensure(args.url)
            print(f"created {database.database_name(args.url)}" if created else "exists")
        else:
            getattr(database, args.action)(args.url)
    except database.DatabaseError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(
        prog="python -m scripts.harness", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = main.add_subparsers(dest="name", required=True)
    run = commands.add_parser("exec-with-socket")
    run.add_argument("--env", required=True)
    run.add_argument("--port-file")
    run.add_argument("command", nargs=argparse.REMAINDER)
    run.set_defaults(handler=_exec_with_socket)
    wait = commands.add_parser("wait-http")
    wait.add_argument("url")
    wait.add_argument("--pid", type=int)
    wait.add_argument("--timeout", type=float, default=60)
    wait.add_argument("--log")
    wait.set_defaults(handler=_wait_http)
    stop = commands.add_parser("stop")
    stop.add_argument("pid", type=int)
    stop.add_argument("--timeout", type=float, default=processes.STOP_TIMEOUT)
    stop.set_defaults(handler=lambda a: processes.stop_pid(a.pid, timeout=a.timeout) or 0)
    port = commands.add_parser("free-port")
    port.set_defaults(handler=lambda a: print(free_port()) or 0)
    db = commands.add_parser("db")
    db.add_argument("action", choices=["create", "drop", "recreate", "ensure"])
    db.add_argument("url")
    db.set_defaults(handler=_db)
    redis = commands.add_parser("redis-clean")
    redis.add_argument("url")
    redis.add_argument("prefix")
    redis.set_defaults(handler=lambda a: print(f"deleted {delete_keys(a.url, a.prefix)} keys") or 0)
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if getattr(args, "command", None) and args.command[:1] == ["--"]:
        args.command = args.command[1:]
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
