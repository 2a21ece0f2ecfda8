"""The processes the benchmark owns (through scripts/harness), and everyone's CPU time from /proc."""

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from scripts import harness

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# "postgres: 15/main: <user> <database> <host>(<port>) <state>": a client backend.
BACKEND_TITLE = re.compile(r"^postgres: (?:[^:]+: )?\S+ (\S+) [^ ]+\(\d+\)")


@dataclass
class Owned:
    """The processes this run started besides the server (wrk, py-spy); every one is stopped by pid at the end."""

    processes: list[subprocess.Popen] = field(default_factory=list)

    def start(self, args: list[str], *, env: dict[str, str] | None, log: Path, cwd: Path) -> subprocess.Popen:
        """Start a process with its output in a log file and remember it."""
        process = harness.spawn(args, log=log, env=env, cwd=cwd)
        self.processes.append(process)
        return process

    def forget(self, pid: int) -> None:
        """Drop a process that has exited and been reaped (its number may be reused)."""
        self.processes = [process for process in self.processes if process.pid != pid]

    def stop_all(self, *, grace: float = 15.0) -> None:
        """Stop every owned process: SIGTERM, SIGKILL after the grace period, then what it left behind."""
        harness.stop_all(self.processes, timeout=grace)
        self.processes.clear()


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
    for pid, comm, fields in harness.processes.proc_stats():
        # fields[0] is field 3 of proc(5): ppid is field 4, utime 14, stime 15, cutime 16, cstime 17.
        own = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        reaped = (int(fields[13]) + int(fields[14])) / CLOCK_TICKS
        stats[pid] = Stat(int(fields[1]), comm, own, reaped)
    return stats


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def classify(stats: dict[int, Stat], *, roots: dict[int, str], database: str) -> dict[int, str]:
    """Name the component of each process that matters: the roots (gunicorn masters, nginx,
    PgBouncer) and their children, postgres (ours or shared), redis."""
    components = {}
    for pid, stat in stats.items():
        if pid in roots:
            components[pid] = roots[pid]
        elif stat.ppid in roots:
            components[pid] = roots[stat.ppid]
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

    `roots` names the processes the run started (a gunicorn master: "gunicorn"; through the
    stack also nginx's master and PgBouncer); their children count with them. `postgres` is the
    postmaster, its shared helpers (WAL writer, checkpointer...) and the backends of the benchmark
    database; backends of other databases (other sessions) are reported apart. A root's
    cutime+cstime count too, so a worker that exits (max_requests) is not lost; a PostgreSQL
    backend that exits inside the window loses its last CPU time (ours persist).
    """

    roots: dict[int, str]
    database: str
    _before: dict[int, Stat] = field(default_factory=dict)

    def start(self) -> None:
        self._before = read_stats()

    def stop(self) -> dict[str, float]:
        after = read_stats()
        components = classify(after, roots=self.roots, database=self.database)
        used = dict.fromkeys(("gunicorn", "postgres", "redis", "postgres-other-db", *self.roots.values()), 0.0)
        for pid, component in components.items():
            before = self._before.get(pid)
            same = before is not None and before.comm == after[pid].comm
            used[component] += max(0.0, after[pid].cpu_seconds - (before.cpu_seconds if same else 0.0))
            if pid in self.roots:
                used[component] += max(0.0, after[pid].children_seconds - (before.children_seconds if same else 0.0))
        return used
