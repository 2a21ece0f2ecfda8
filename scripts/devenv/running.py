"""A command in the foreground, stopped with the launcher (Ctrl-C, SIGTERM, SIGHUP)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable

from scripts.harness import ROOT

STOP_TIMEOUT = 30.0
# A Ctrl-C at the terminal reaches the foreground child as well; it gets this long to stop on its own.
CHILD_GRACE = 3.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def raise_system_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def manage(*args: str) -> list[str]:
    return [sys.executable, "manage.py", *args]


def run(
    command: list[str],
    env: dict[str, str],
    *,
    pass_fds: tuple[int, ...] = (),
    started: Callable[[subprocess.Popen], None] | None = None,
) -> int:
    """Run a command in the foreground and return its exit code; stop it when the launcher is stopped.

    `started(child)` runs once the child runs, while it runs (e.g. to say where it answers).
    """
    child = subprocess.Popen(command, cwd=ROOT, env=env, pass_fds=pass_fds)
    try:
        if started is not None:
            started(child)
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
