"""The harness every server start goes through (scripts/harness): ports, processes, servers, databases, keys."""

import secrets
import signal
import socket
import subprocess
import sys
import time

import pytest
from django.conf import settings
from redis import Redis

from scripts import harness
from scripts.harness import database, processes, servers
from tests.servers import database_url

# Serves one connection on the port in argv[1] ("Address already in use" when taken), then exits.
ONE_SHOT_SERVER = """
import socket, sys
sock = socket.socket()
try:
    sock.bind(("127.0.0.1", int(sys.argv[1])))
except OSError as error:
    sys.exit(str(error))
sock.listen()
print("listening", flush=True)
connection, _ = sock.accept()
connection.sendall(b"hello")
"""


class OneShot(harness.Server):
    name = "one-shot"

    def command(self) -> list[str]:
        return [sys.executable, "-c", ONE_SHOT_SERVER, str(self.port)]

    def is_ready(self) -> bool:
        return "listening" in self.log_tail()


def test_a_closed_port_refuses_connections_and_nobody_else_can_bind_it():
    port = harness.closed_port()

    assert not harness.port_answers("127.0.0.1", port)
    with pytest.raises(OSError):
        harness.bound_socket(port=port)


def test_a_server_whose_port_was_taken_first_starts_again_on_another(monkeypatch, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        taken_port = taken.getsockname()[1]
        ports = iter([taken_port, harness.free_port()])
        monkeypatch.setattr(servers, "free_port", lambda host: next(ports))

        with OneShot(log_path=tmp_path / "one-shot.log") as server:
            assert server.port != taken_port
            assert "Address already in use" in server.log()


def test_a_server_that_exits_fails_its_start_with_the_tail_of_its_log(tmp_path):
    class Broken(harness.Server):
        name = "broken"

        def command(self) -> list[str]:
            return [sys.executable, "-c", "import sys; print('no config file here'); sys.exit(3)"]

    with pytest.raises(harness.ServerError, match=r"broken exited with 3(.|\n)*no config file here"):
        Broken(log_path=tmp_path / "broken.log").start()


def test_stop_kills_the_children_a_stopped_process_leaves_behind(tmp_path):
    pid_file = tmp_path / "child.pid"
    code = (
        "import signal, subprocess, sys, time\n"
        f"child = subprocess.Popen(['sleep', '300'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
        "time.sleep(300)\n"
    )
    parent = harness.spawn([sys.executable, "-c", code], log=tmp_path / "parent.log")
    harness.wait_until(lambda: pid_file.exists() and pid_file.read_text(), timeout=30, what="the child")
    child = int(pid_file.read_text())

    harness.stop(parent, timeout=10)

    assert parent.returncode == 0
    harness.wait_until(lambda: not processes.alive(child), timeout=10, what="the orphan to be killed")


def test_exec_with_socket_hands_the_server_a_bound_port_and_stop_ends_it_by_pid(tmp_path):
    port_file = tmp_path / "port"
    serve = (
        "import os, socket\n"
        "sock = socket.socket(fileno=int(os.environ['BIND'].removeprefix('fd://')))\n"
        "sock.listen()\n"
        "while True:\n"
        "    connection, _ = sock.accept()\n"
        "    connection.sendall(b'hello')\n"
        "    connection.close()\n"
    )
    command = [sys.executable, "-m", "scripts.harness", "exec-with-socket", "--env", "BIND", "--port-file"]
    server = subprocess.Popen([*command, str(port_file), "--", sys.executable, "-c", serve], cwd=harness.ROOT)
    try:
        harness.wait_until(port_file.exists, timeout=30, what="the port file")
        port = int(port_file.read_text())
        harness.wait_until(lambda: harness.port_answers("127.0.0.1", port), timeout=30, what="the server to listen")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            assert connection.recv(5) == b"hello"
        stopped = subprocess.run([sys.executable, "-m", "scripts.harness", "stop", str(server.pid)], cwd=harness.ROOT)
        assert stopped.returncode == 0
        assert server.wait(10) == -signal.SIGTERM
    finally:
        harness.stop(server)
    assert harness.port_is_free(port)


def test_wait_until_gives_up_after_its_deadline():
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="waiting for nothing"):
        harness.wait_until(lambda: False, timeout=0.2, what="nothing")
    assert time.monotonic() - started < 5


def test_a_scratch_database_exists_for_the_block_only():
    url = database.database_url(database_url(), f"ft_harness_scratch_{secrets.token_hex(4)}")

    with database.scratch(url):
        assert database.exists(url)
        assert database.ensure(url) is False

    assert not database.exists(url)


def test_delete_keys_deletes_the_prefix_and_its_locks_and_nothing_else():
    client = Redis.from_url(settings.CACHES["default"]["LOCATION"])
    mine, neighbour = f"{settings.REDIS_KEY_PREFIX}-harness", f"{settings.REDIS_KEY_PREFIX}-harness-other"
    keys = [f"{mine}:flag", f"lock:{mine}:ticket", f"lock-signal:{mine}:ticket", f"{neighbour}:flag"]
    try:
        for key in keys:
            client.set(key, 1)

        assert harness.delete_keys(client, mine) == 3

        assert [bool(client.exists(key)) for key in keys] == [False, False, False, True]
    finally:
        client.delete(*keys)


def test_server_env_is_production_on_plain_http_with_what_it_is_given():
    env = harness.server_env(
        {"DJANGO_DEBUG": "true", "KEEP": "1", "DROP": "x"},
        database_url="postgres://db/x",
        throttles_off=True,
        DROP=None,
    )

    assert env["DJANGO_DEBUG"] == "false"
    assert env["DJANGO_HTTPS"] == "false"
    assert env["DATABASE_URL"] == "postgres://db/x"
    assert env["THROTTLE_BOOKING"] == "off"
    assert env["KEEP"] == "1"
    assert "DROP" not in env
    assert "REDIS_URL" not in env
