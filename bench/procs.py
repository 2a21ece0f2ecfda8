"""Start and stop the processes the benchmark owns, and read everyone's CPU time from /proc."""

import contextlib
import os
import re
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# "postgres: 15/main: <user> <database> <host>(<port>) <state>": a client backend.
BACKEND_TITLE = re.compile(r"^postgres: (?:[^:]+: )?\S+ (\S+) [^ ]+\(\d+\)")


@dataclass
class Owned:
    """The processes this run started; every one is stopped by pid at the end."""

    pids: list[int] = field(default_factory=list)

    def start(self, args: list[str], *, env: dict[str, str] | None, log: Path, cwd: Path) -> subprocess.Popen:
        """Start a process with its output in a log file and remember its pid."""
        with log.open("ab") as out:
            process = subprocess.Popen(args, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        self.pids.append(process.pid)
        return process

    def forget(self, pid: int) -> None:
        """Drop a pid that has exited and been reaped (its number may be reused)."""
        if pid in self.pids:
            self.pids.remove(pid)

    def stop_all(self, *, grace: float = 15.0) -> None:
        """Stop every owned process, then any child it leaves behind: SIGTERM, SIGKILL after the grace period.

        Only the owned pids get the first SIGTERM: a gunicorn master whose workers die under it
        would start new ones, so it is left to stop its own workers.
        """
        owned = list(self.pids)
        descendants = {child for pid in owned for child in children(pid)}
        for pid in owned:
            _signal(pid, signal.SIGTERM)
        _wait_gone(owned, grace)
        survivors = [pid for pid in descendants if _alive(pid)]
        for pid in survivors:
            _signal(pid, signal.SIGTERM)
        _wait_gone(survivors, 5.0)
        for pid in [*owned, *descendants]:
            if _alive(pid):
                _signal(pid, signal.SIGKILL)
        _reap(owned)
        self.pids.clear()


def _wait_gone(pids: list[int], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        _reap(pids)
        time.sleep(0.05)


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _reap(pids: Iterable[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def children(pid: int) -> list[int]:
    """Return the pids whose parent is pid."""
    return [p for p, stat in read_stats().items() if stat.ppid == pid]


def wait_http(url: str, *, timeout: float, process: subprocess.Popen | None = None) -> None:
    """Wait until url answers 200; raise when the deadline passes or the process dies."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError as exc:
            last_error = exc
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer 200 within {timeout:.0f} s (last error: {last_error})")


# CPU accounting ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stat:
    ppid: int
    comm: str
    cpu_seconds: float
    children_seconds: float


def read_stats() -> dict[int, Stat]:
    """Read utime+stime, parent and name of every process from /proc/<pid>/stat."""
    stats = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        # fields[0] is field 3 of proc(5): ppid is field 4, utime 14, stime 15, cutime 16, cstime 17.
        own = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        reaped = (int(fields[13]) + int(fields[14])) / CLOCK_TICKS
        stats[int(entry.name)] = Stat(int(fields[1]), comm, own, reaped)
    return stats


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def classify(stats: dict[int, Stat], *, gunicorn_pid: int, database: str) -> dict[int, str]:
    """Name the component of each process that matters: gunicorn, postgres (ours or shared), redis."""
    components = {}
    for pid, stat in stats.items():
        if pid == gunicorn_pid or stat.ppid == gunicorn_pid:
            components[pid] = "gunicorn"
        elif stat.comm == "redis-server":
            components[pid] = "redis"
        elif stat.comm == "postgres":
            backend = BACKEND_TITLE.match(_cmdline(pid))
            if backend is None or backend.group(1) == database:
                components[pid] = "postgres"
            else:
                components[pid] = "postgres-other-db"
    return components


@dataclass
class CpuWindow:
    """CPU seconds each component used between start() and stop(), by /proc deltas per pid.

    `postgres` is the postmaster, its shared helpers (WAL writer, checkpointer...) and the backends
    of the benchmark database; backends of other databases (other sessions) are reported apart.
    The gunicorn master's cutime+cstime count too, so a worker that exits (max_requests) is not lost;
    a PostgreSQL backend that exits inside the window loses its last CPU time (ours persist).
    """

    gunicorn_pid: int
    database: str
    _before: dict[int, Stat] = field(default_factory=dict)

    def start(self) -> None:
        self._before = read_stats()

    def stop(self) -> dict[str, float]:
        after = read_stats()
        components = classify(after, gunicorn_pid=self.gunicorn_pid, database=self.database)
        used = {"gunicorn": 0.0, "postgres": 0.0, "redis": 0.0, "postgres-other-db": 0.0}
        for pid, component in components.items():
            before = self._before.get(pid)
            same = before is not None and before.comm == after[pid].comm
            used[component] += max(0.0, after[pid].cpu_seconds - (before.cpu_seconds if same else 0.0))
            if pid == self.gunicorn_pid:
                used[component] += max(0.0, after[pid].children_seconds - (before.children_seconds if same else 0.0))
        return used
