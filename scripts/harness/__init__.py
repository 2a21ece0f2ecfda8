"""One harness for every server FastTicket's tests, benchmark, fuzzer, CI and `./dev` start.

- `ports`: ports the operating system hands out (a bound socket passed to gunicorn as `fd://N`, or
  a port picked by the OS with a retry when the server's bind fails), so two runs cannot collide.
- `processes`: start a process in its own session with its output in a log, wait for it with a
  deadline (and the log's tail on failure), stop it by pid: SIGTERM, then SIGKILL of it and its
  children.
- `servers`: `Server`, the base class of every kind (command, readiness, stop), and the kinds:
  `Gunicorn`, `RedisServer`, `PostgresServer`.
- `database`: a scratch database on a server (create, migrate, drop); `redis_keys`: delete one
  run's keys by prefix (SCAN, never FLUSHDB: the servers are shared).
- `env`: the environment of a FastTicket server started for a test, a benchmark or a check.

Only the standard library is imported at module level (psycopg and redis when used), so `./dev`
can import it before the virtualenv has its packages. From a shell: `python -m scripts.harness`.
"""

from scripts.harness.database import DatabaseError
from scripts.harness.env import THROTTLES_OFF, child_env, random_secret_key, server_env
from scripts.harness.ports import HOST, bound_socket, closed_port, free_port, port_answers, port_is_free
from scripts.harness.processes import ROOT, spawn, stop, stop_all, stop_pid, wait_until
from scripts.harness.redis_keys import delete_keys
from scripts.harness.servers import Gunicorn, PostgresServer, RedisServer, Server, ServerError, redis_server_binary

__all__ = [
    "HOST",
    "ROOT",
    "THROTTLES_OFF",
    "DatabaseError",
    "Gunicorn",
    "PostgresServer",
    "RedisServer",
    "Server",
    "ServerError",
    "bound_socket",
    "child_env",
    "closed_port",
    "delete_keys",
    "free_port",
    "port_answers",
    "port_is_free",
    "random_secret_key",
    "redis_server_binary",
    "server_env",
    "spawn",
    "stop",
    "stop_all",
    "stop_pid",
    "wait_until",
]
