"""FastTicket's launcher behind `./dev`: set up .venv, find or start PostgreSQL and Redis, run a command.

- `cli`: the command line, built from the registry of commands.
- `commands`: the registry (`@command(...)`) and the commands `serve`, `test`, `manage`, `setup`.
- `requirements`: what each command installs into .venv, kept in step with requirements*.txt.
- `services`: finding PostgreSQL and Redis (URL from the environment or .env, else the default
  local port), or starting embedded ones under .data/; the database created when it is missing.
- `running`: a command in the foreground, stopped with the launcher (Ctrl-C, SIGTERM, SIGHUP).

Servers are started and stopped through scripts/harness. Only the standard library is imported at
module level, so `./dev --help` runs before .venv has any package.
"""

import sys


class LauncherError(Exception):
    """Something the user must fix; the message is one line saying what to do."""


def say(message: str, *, error: bool = False) -> None:
    """Print a launcher message, flushed so it keeps its place among the children's output."""
    print(f"dev: {message}", file=sys.stderr if error else sys.stdout, flush=True)
