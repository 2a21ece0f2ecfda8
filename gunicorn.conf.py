"""Gunicorn settings for FastTicket, read from the environment (`gunicorn -c gunicorn.conf.py`).

Sync workers on purpose: a booking may wait up to BOOKING_LOCK_WAIT seconds for the per-ticket lock
in Redis (BLPOP), and a sync worker spends that wait blocked in one request, which keeps the lock,
the durable transaction and the database connection of that request in one thread. Capacity comes
from more workers (and more replicas behind a proxy), not from threads or green threads.

A sync worker reads one connection at a time, so a client that sends its request slowly holds a
whole worker: four such clients stop a four-worker process. gunicorn therefore always runs behind
the buffering proxy (deploy/nginx/nginx.conf.template), which reads each request whole before it
passes it on and never publishes gunicorn itself. The values below are chosen for that proxy.
"""

import os


def _int(name: str, default: int) -> int:
    """Read a whole number from the environment, falling back to the default when unset or empty."""
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def _cores() -> int:
    """Count the CPUs this process may run on (a container's cpuset, not the host's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


# In a container the port must be reachable from the proxy, outside the container's own loopback;
# the port is never published (Compose) or reachable from outside the proxy (Kubernetes NetworkPolicy).
bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = _int("GUNICORN_WORKERS", _int("WEB_CONCURRENCY", 2 * _cores() + 1))
worker_class = "sync"

# Longer than the slowest legitimate request (the lock wait plus the 10 s statement timeout), as
# the proxy only passes on requests it has read whole: no client's slowness counts against it. The
# proxy waits longer (proxy_read_timeout 40 s), so a stuck worker ends as gunicorn's restart of it
# (the proxy answers 502, and the worker's transaction is rolled back), never as a proxy timeout
# while the worker might still commit.
timeout = _int("GUNICORN_TIMEOUT", 30)
# On SIGTERM (a deploy, a scale-in) gunicorn stops accepting, so the proxy sends new requests to the
# other processes, and lets running requests finish for this long. Kubernetes' grace period (45 s)
# and Compose's stop_grace_period (40 s) are longer.
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Sync workers close each connection after one response; the proxy keeps the clients' connections
# alive and opens a new local one per request. This applies only if the worker class changes.
keepalive = _int("GUNICORN_KEEPALIVE", 5)

# Recycle workers now and then so a slow leak cannot grow without bound; the jitter keeps them
# from all restarting at the same moment. Behind the proxy a restart costs no client anything: the
# old worker finishes its request, and the proxy only ever hands over whole requests.
max_requests = _int("GUNICORN_MAX_REQUESTS", 100000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 10000)

# The proxy refuses oversized request lines and headers with a JSON error (414, 431); gunicorn's
# own limits sit above the proxy's (8 KiB a line, 4 x 8 KiB in all) so that they never answer
# first with gunicorn's HTML 400. 8190 and 32768 are the largest values gunicorn takes.
limit_request_line = 8190
limit_request_field_size = 8190
limit_request_fields = 32768

accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-")
errorlog = os.environ.get("GUNICORN_ERRORLOG", "-")
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")

# Peers trusted to set the scheme (X-Forwarded-Proto) for wsgi.url_scheme: the proxy in front
# ("*" in Compose and Kubernetes, where only the proxy can reach gunicorn).
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# Worker heartbeats go to memory: /dev/shm is a tmpfs in containers, unlike an overlay /tmp.
# Gunicorn creates them with mkstemp, so a shared directory is safe there.
_SHM = "/dev/shm"  # noqa: S108
worker_tmp_dir = os.environ.get("GUNICORN_WORKER_TMP_DIR") or (_SHM if os.path.isdir(_SHM) else None)

# The gunicornc control socket would live in $HOME, which the container does not give the app
# user to write, and nothing here uses it.
control_socket_disable = True

# With several workers, /metrics must add up every worker's counters: prometheus_client's
# multiprocess mode keeps them in files under PROMETHEUS_MULTIPROC_DIR (set in the image).
_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def on_starting(server) -> None:
    """Start from an empty metrics directory, so counters of an earlier run are not added in."""
    if _metrics_dir:
        os.makedirs(_metrics_dir, exist_ok=True)
        for name in os.listdir(_metrics_dir):
            if name.endswith(".db"):
                os.remove(os.path.join(_metrics_dir, name))


def child_exit(server, worker) -> None:
    """Drop a dead worker's live gauges from the metrics."""
    if _metrics_dir:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
