"""Gunicorn servers for the fault and security tests, on this suite's ports (8181-8199).

A server serves pytest-django's test database (so tests that use it are transactional) with the
test run's secret key, Redis database and key prefix, unless the test overrides them.
"""

from pathlib import Path

from tests.servers import GunicornServer, free_port, lock_waiters, wait_until

PORTS = range(8181, 8200)  # 8180 is scripts/fuzz.py's


class Server(GunicornServer):
    """A gunicorn on the lowest free port of this suite; a context manager."""

    def __init__(self, *, log_path: Path, workers: int = 1, **env: str) -> None:
        super().__init__(free_port(PORTS), log_path=log_path, workers=workers, **env)


def closed_port() -> int:
    """Return the highest free port of this suite's range: a dependency pointed there is down."""
    return free_port(PORTS[::-1])


def backend_waiting_for_a_lock() -> int:
    """Return the pid of a backend of the test database that waits for a lock, once there is one."""
    return wait_until(lock_waiters, timeout=15, what="a backend waiting for a lock", interval=0.05)[0][0]
