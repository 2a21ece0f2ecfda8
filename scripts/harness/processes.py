"""Start a process with its output in a log, wait for it with a deadline, stop it by pid.

Every process starts in a session (and process group) of its own: a Ctrl-C at the terminal is the
starter's to handle, and the group lets `stop` SIGKILL the children a process leaves behind (the
workers of a gunicorn master killed with SIGKILL) without touching anything it did not start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[2]
STOP_TIMEOUT = 30.0
LOG_TAIL_LINES = 40

T = TypeVar("T")


def _die_with_parent(sig: int) -> Callable[[], None] | None:
    """Return a preexec hook that has Linux send `sig` to the child when its starter dies.

    It covers the one exit no handler sees (SIGKILL of the starter). Only for starters that run no
    threads: preexec_fn is unsafe with threads, and the signal fires when the starting thread ends.
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1

    def hook() -> None:
        libc.prctl(pr_set_pdeathsig, sig)

    return hook


def spawn(
    command: Sequence[str],
    *,
    log: Path | None,
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
    pass_fds: Sequence[int] = (),
    user: str | None = None,
    die_with_parent: int | None = None,
) -> subprocess.Popen:
    """Start `command` in its own session with stdout and stderr appended to `log` (None: discarded).

    `die_with_parent`: the signal Linux sends the process if this one dies first (see _die_with_parent).
    """
    with open(log, "ab") if log is not None else open(os.devnull, "wb") as out:
        return subprocess.Popen(
            list(command),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=tuple(pass_fds),
            user=user,
            preexec_fn=_die_with_parent(die_with_parent) if die_with_parent else None,
        )


def wait_until(predicate: Callable[[], T], *, timeout: float, what: str, interval: float = 0.02) -> T:
    """Poll until predicate() is truthy and return its value; raise TimeoutError after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def alive(pid: int) -> bool:
    """Tell whether pid runs (a zombie does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def proc_stats() -> Iterator[tuple[int, str, list[str]]]:
    """Yield (pid, name, fields) of every process from /proc/<pid>/stat; fields[0] is proc(5)'s field 3 (state)."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        yield int(entry.name), raw[raw.index("(") + 1 : raw.rindex(")")], raw[raw.rindex(")") + 2 :].split()


def children(pid: int) -> list[int]:
    """Return the pids whose parent is pid."""
    return [child for child, _, fields in proc_stats() if int(fields[1]) == pid]


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def stop_all(
    processes: Iterable[subprocess.Popen], *, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT
) -> None:
    """Stop processes we started by pid: `sig` to each, SIGKILL after `timeout`, then SIGKILL what they left.

    Only the processes themselves get `sig`: a gunicorn master stops its own workers (and would
    replace workers that died under it). Each was started in a group of its own (spawn), so the
    final SIGKILL to that group reaches exactly the children it leaves behind.
    """
    processes = [process for process in processes if process is not None]
    for process in processes:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for process in processes:
        _signal_group(process.pid, signal.SIGKILL)


def stop(process: subprocess.Popen | None, *, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> None:
    """Stop one process we started (see stop_all)."""
    if process is not None:
        stop_all([process], sig=sig, timeout=timeout)


def stop_pid(pid: int, *, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> None:
    """Stop a process we started that is not our child (a shell script's), as stop_all does.

    A group with the pid's number exists only if that process made it (`exec` below does), so the
    final SIGKILL to it reaches only what that process left behind.
    """
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    try:
        wait_until(lambda: not alive(pid), timeout=timeout, what=f"pid {pid} to exit", interval=0.1)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _signal_group(pid, signal.SIGKILL)


def log_tail(log: Path | None, *, since: int = 0, lines: int = LOG_TAIL_LINES) -> str:
    """Return the last lines of a log written after byte offset `since`."""
    if log is None or not log.exists():
        return ""
    with log.open("rb") as file:
        file.seek(since)
        text = file.read().decode(errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def run_python(
    args: Sequence[str], *, env: dict[str, str] | None, timeout: float, cwd: Path = ROOT
) -> subprocess.CompletedProcess:
    """Run this interpreter with `args` in the project and capture its output (text)."""
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def manage(
    *args: str, env: dict[str, str] | None, timeout: float = 600, cwd: Path = ROOT
) -> subprocess.CompletedProcess:
    """Run `manage.py args` and capture its output."""
    return run_python(["manage.py", *args], env=env, timeout=timeout, cwd=cwd)


def output_of(done: subprocess.CompletedProcess) -> str:
    """Return a finished command's stdout and stderr together."""
    return ((done.stdout or "") + (done.stderr or "")).strip()
