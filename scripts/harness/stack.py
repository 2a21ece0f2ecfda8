"""The production topology on one machine: nginx -> 3 x gunicorn -> PgBouncer -> PostgreSQL, and Redis.

What docker-compose.yml and deploy/kubernetes/ run, without Docker: the same nginx template
(deploy/nginx/nginx.conf.template), gunicorn with gunicorn.conf.py, PgBouncer in transaction mode
with the web processes set for it (DATABASE_POOLER=transaction), production settings (DEBUG off,
plain HTTP). `./dev stack` serves it on 127.0.0.1:8080; tests and the benchmark start it on ports
the OS chooses, against their own database and Redis key prefix:

    with Stack(database_url=..., redis_url=..., redis_prefix="ft-test", run_dir=tmp_path) as stack:
        stack.url                # http://127.0.0.1:<nginx's port>
        stack.web[1].kill()      # SIGKILL one FastTicket process (master and workers)
        stack.web[1].start()     # and bring it back on the same port

PostgreSQL and Redis are not started here: the caller brings them (found or embedded, as
`./dev serve` finds them). nginx and PgBouncer are Debian's packages (`./dev stack` installs them
when they are missing and it may).
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Self
from urllib.parse import unquote, urlsplit

from scripts.harness import processes
from scripts.harness.database import database_name
from scripts.harness.env import server_env
from scripts.harness.ports import HOST
from scripts.harness.processes import ROOT
from scripts.harness.servers import Gunicorn, Server, ServerError, http_status

NGINX_TEMPLATE = ROOT / "deploy" / "nginx" / "nginx.conf.template"
PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")
WEB_PROCESSES = 3
WORKERS_PER_PROCESS = 2
POOL_SIZE = 20
# The proxy's timeouts of every deployment (docker-compose.yml, deploy/kubernetes/); a test may
# start an Nginx with shorter ones.
NGINX_CLIENT_TIMEOUT = "10s"
NGINX_PROXY_READ_TIMEOUT = "40s"
# The user PgBouncer runs as when we are root (it refuses to run as root).
UNPRIVILEGED_USERS = ("postgres", "nobody")


def binary(name: str) -> str | None:
    """Return the path of a Debian server binary (in /usr/sbin, which a user's PATH may lack)."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")


def render_nginx_conf(values: Mapping[str, str], template: Path = NGINX_TEMPLATE) -> str:
    """Fill the template's ${NAME} placeholders as the nginx image's envsubst does; every one must be given."""
    text = template.read_text()
    missing = sorted(set(PLACEHOLDER.findall(text)) - set(values))
    if missing:
        raise ValueError(f"no value for {', '.join(missing)} in {template}")
    return PLACEHOLDER.sub(lambda match: str(values[match.group(1)]), text)


def _unprivileged_user() -> str | None:
    """Return the user to run a server as that refuses root, or None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in UNPRIVILEGED_USERS:
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise ServerError(f"running as root and none of the users {UNPRIVILEGED_USERS} exists to run PgBouncer as")


class Nginx(Server):
    """nginx from the project's template, in front of `upstreams` (host, port) pairs.

    `client_timeout` and `proxy_read_timeout` (nginx durations such as "10s" or "500ms") are the
    template's NGINX_CLIENT_TIMEOUT and NGINX_PROXY_READ_TIMEOUT: production's unless a test
    shortens them to see them end.
    """

    name = "nginx"
    bind_failure = "Address already in use"
    # Graceful: finish the requests in flight, then stop.
    stop_signal = signal.SIGQUIT

    def __init__(
        self,
        *,
        log_path: Path | None,
        run_dir: Path,
        upstreams: Sequence[tuple[str, int]],
        api_max_body_bytes: int = 65536,
        client_timeout: str = NGINX_CLIENT_TIMEOUT,
        proxy_read_timeout: str = NGINX_PROXY_READ_TIMEOUT,
        **kwargs,
    ) -> None:
        super().__init__(log_path=log_path, **kwargs)
        self.run_dir = run_dir
        self.upstreams = list(upstreams)
        self.api_max_body_bytes = api_max_body_bytes
        self.client_timeout = client_timeout
        self.proxy_read_timeout = proxy_read_timeout

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def config(self) -> str:
        servers = " ".join(f"server {host}:{port} max_fails=1 fail_timeout=5s;" for host, port in self.upstreams)
        return render_nginx_conf(
            {
                "NGINX_LISTEN_PORT": f"{self.host}:{self.port}",
                "NGINX_UPSTREAM_SERVERS": servers,
                # No `resolve` here: the upstreams are addresses.
                "NGINX_LOCAL_RESOLVERS": "127.0.0.1",
                "NGINX_RUN_DIR": str(self.run_dir),
                "NGINX_FORWARDED_PROTO": "$scheme",
                "API_MAX_BODY_BYTES": str(self.api_max_body_bytes),
                "NGINX_CLIENT_TIMEOUT": self.client_timeout,
                "NGINX_PROXY_READ_TIMEOUT": self.proxy_read_timeout,
            }
        )

    def command(self) -> list[str]:
        nginx = binary("nginx")
        if nginx is None:
            raise ServerError("no nginx binary (apt-get install nginx)")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        config = self.run_dir / "nginx.conf"
        config.write_text(self.config())
        # -e: the startup log before the configuration is read, which would go to /var/log/nginx.
        return [nginx, "-p", str(self.run_dir), "-c", str(config), "-e", "stderr", "-g", "daemon off;"]

    def is_ready(self) -> bool:
        return http_status(self.host, self.port, "/proxy-healthz") == 200


class PgBouncer(Server):
    """PgBouncer in transaction mode in front of the PostgreSQL server of `server_url`.

    Clients connect as the server URL's user to any database of that server; PgBouncer logs in
    with the URL's credentials. It accepts only local clients (127.0.0.1), without a password.
    """

    name = "pgbouncer"
    bind_failure = "Address already in use"
    # SIGINT is PgBouncer's safe shutdown: it waits for running transactions (SIGTERM drops them).
    stop_signal = signal.SIGINT

    def __init__(self, *, log_path: Path | None, run_dir: Path, server_url: str, pool_size: int = POOL_SIZE, **kwargs):
        kwargs.setdefault("user", _unprivileged_user())
        super().__init__(log_path=log_path, **kwargs)
        self.run_dir = run_dir
        self.server_url = server_url
        self.pool_size = pool_size
        self._own_dir: Path | None = None

    def url(self, database: str) -> str:
        return f"postgres://{self.username}@{self.host}:{self.port}/{database}"

    @property
    def username(self) -> str:
        return unquote(urlsplit(self.server_url).username or "postgres")

    def config(self, userlist: Path) -> str:
        server = urlsplit(self.server_url)
        login = f"user={self.username}"
        if server.password:
            login += f" password={unquote(server.password)}"
        return "\n".join(
            [
                "[databases]",
                f"* = host={server.hostname or HOST} port={server.port or 5432} {login}",
                "[pgbouncer]",
                f"listen_addr = {self.host}",
                f"listen_port = {self.port}",
                "unix_socket_dir =",
                "auth_type = trust",
                f"auth_file = {userlist}",
                # What docker-compose.yml and a CloudNativePG Pooler run; the web processes have
                # DATABASE_POOLER=transaction for it.
                "pool_mode = transaction",
                f"default_pool_size = {self.pool_size}",
                "max_client_conn = 2000",
                "ignore_startup_parameters = extra_float_digits",
                # The admin console (database `pgbouncer`), for SHOW SERVERS when stopping.
                f"admin_users = {self.username}",
                "",
            ]
        )

    def command(self) -> list[str]:
        pgbouncer = binary("pgbouncer")
        if pgbouncer is None:
            raise ServerError("no pgbouncer binary (apt-get install pgbouncer)")
        config_dir = self.run_dir
        if self.user is not None:
            # It reads its files as that user, who may not pass through the caller's directories
            # (pytest's are private to root): a directory of its own under the system's temp dir.
            entry = pwd.getpwnam(self.user)
            self._own_dir = config_dir = Path(tempfile.mkdtemp(prefix="ft-pgbouncer-"))
            os.chown(config_dir, entry.pw_uid, entry.pw_gid)
        config_dir.mkdir(parents=True, exist_ok=True)
        config = config_dir / "pgbouncer.ini"
        userlist = config_dir / "userlist.txt"
        config.write_text(self.config(userlist))
        userlist.write_text(f'"{self.username}" ""\n')
        return [pgbouncer, str(config)]

    def server_ports(self) -> list[int]:
        """Return the local ports of PgBouncer's connections to PostgreSQL (its admin console's SHOW SERVERS)."""
        import psycopg

        from scripts.harness.database import connect

        try:
            with connect(self.url("pgbouncer"), autocommit=True, prepare_threshold=None) as console:
                cursor = console.execute("SHOW SERVERS")
                columns = [column.name for column in cursor.description]
                return [int(row[columns.index("local_port")]) for row in cursor.fetchall()]
        except psycopg.Error:
            return []

    def stop(self) -> None:
        """Stop PgBouncer, then wait until PostgreSQL has ended its sessions (so the database can be dropped)."""
        ports = self.server_ports() if self.running() else []
        super().stop()
        if ports:
            _wait_sessions_gone(self.server_url, ports)
        if self._own_dir is not None:
            shutil.rmtree(self._own_dir, ignore_errors=True)
            self._own_dir = None

    def is_ready(self) -> bool:
        import psycopg

        from scripts.harness.database import connect

        try:
            with connect(self.url(database_name(self.server_url) or "postgres")) as connection:
                connection.execute("SELECT 1")
        except psycopg.OperationalError:
            return False
        return True


def _wait_sessions_gone(server_url: str, ports: list[int], timeout: float = 10) -> None:
    """Wait until PostgreSQL has no session from one of these client ports of 127.0.0.1."""
    from scripts.harness.database import MAINTENANCE_DATABASE, connect, database_url

    with connect(database_url(server_url, MAINTENANCE_DATABASE), autocommit=True) as connection:

        def gone() -> bool:
            query = "SELECT count(*) FROM pg_stat_activity WHERE client_port = ANY(%s)"
            return connection.execute(query, [ports]).fetchone()[0] == 0

        processes.wait_until(gone, timeout=timeout, what="PgBouncer's sessions to end", interval=0.05)


class Stack:
    """nginx, `web_processes` FastTicket gunicorns and PgBouncer for one database; a context manager.

    `database_url` is the database on PostgreSQL itself (migrated already unless `migrate`); the
    web processes reach it through PgBouncer. `port` 0: nginx on a port the OS chooses.
    """

    def __init__(
        self,
        *,
        database_url: str,
        redis_url: str,
        redis_prefix: str,
        run_dir: Path,
        port: int = 0,
        web_processes: int = WEB_PROCESSES,
        workers: int = WORKERS_PER_PROCESS,
        pool_size: int = POOL_SIZE,
        secret_key: str | None = None,
        throttles_off: bool = False,
        migrate: bool = False,
        env: Mapping[str, str] | None = None,
        **overrides: str | None,
    ) -> None:
        self.database_url = database_url
        self.run_dir = Path(run_dir)
        self.migrate = migrate
        self.port = port
        self.base_env = server_env(
            env,
            database_url=database_url,
            redis_url=redis_url,
            redis_prefix=redis_prefix,
            secret_key=secret_key,
            throttles_off=throttles_off,
            DATABASE_POOLER="none",
            **overrides,
        )
        self.pgbouncer = PgBouncer(
            log_path=self.run_dir / "pgbouncer.log",
            run_dir=self.run_dir / "pgbouncer",
            server_url=database_url,
            pool_size=pool_size,
        )
        self.web = [
            Gunicorn(
                log_path=self.run_dir / f"web-{index}.log",
                workers=workers,
                config=ROOT / "gunicorn.conf.py",
                # The per-process env is set in start(), once PgBouncer's port is known.
                env=None,
            )
            for index in range(1, web_processes + 1)
        ]
        self.nginx: Nginx | None = None

    @property
    def url(self) -> str:
        return self.nginx.url

    def servers(self) -> list[Server]:
        return [self.pgbouncer, *self.web, *([self.nginx] if self.nginx else [])]

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _manage(self, *args: str) -> None:
        done = processes.manage(*args, env=self.base_env, timeout=600)
        if done.returncode:
            raise ServerError(f"manage.py {' '.join(args)} failed:\n{processes.output_of(done)}")

    def start(self) -> Self:
        """Start PgBouncer, the web processes, then nginx; stop what started if one fails."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            if self.migrate:
                self._manage("migrate", "--noinput")
            # What the web processes' pooled sessions start with: the booking's lock bound.
            self._manage("set_database_defaults")
            self.pgbouncer.start()
            pooled = self.pgbouncer.url(database_name(self.database_url))
            for index, web in enumerate(self.web, start=1):
                web.env = {
                    **self.base_env,
                    "DATABASE_URL": pooled,
                    "DATABASE_POOLER": "transaction",
                    # nginx appends the client's address to X-Forwarded-For and sets the scheme.
                    "DJANGO_NUM_PROXIES": "1",
                    "GUNICORN_FORWARDED_ALLOW_IPS": HOST,
                    # gunicorn.conf.py empties this directory when a master starts: one each.
                    "PROMETHEUS_MULTIPROC_DIR": str(self.run_dir / f"metrics-{index}"),
                }
            for web in self.web:
                web.start(wait=False)
            for web in self.web:
                web.wait_until_ready()
            self.nginx = Nginx(
                log_path=self.run_dir / "nginx.log",
                run_dir=self.run_dir / "nginx",
                upstreams=[(web.host, web.port) for web in self.web],
                api_max_body_bytes=int(self.base_env.get("API_MAX_BODY_BYTES") or 65536),
                port=self.port or None,
            )
            self.nginx.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop nginx first (no new requests), then the web processes, then PgBouncer."""
        if self.nginx is not None:
            self.nginx.stop()
        processes.stop_all([web.process for web in self.web])
        self.pgbouncer.stop()

    def describe(self) -> str:
        """Say what runs where, for a person."""
        lines = [f"nginx       {self.url}  (pid {self.nginx.pid})"]
        for index, web in enumerate(self.web, 1):
            lines.append(f"web {index}       {web.url}  (pid {web.pid}, {web.workers} workers)")
        lines.append(f"pgbouncer   127.0.0.1:{self.pgbouncer.port}  (pid {self.pgbouncer.pid}, transaction pooling)")
        return "\n".join(lines)
