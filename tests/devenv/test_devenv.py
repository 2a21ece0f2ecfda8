"""The launcher behind `./dev` (scripts/devenv): service choice, embedded servers, clean stops; seed_demo."""

import os
import signal
import socket
import subprocess
import sys
import time
from io import StringIO
from urllib.parse import urlsplit

import psycopg
import pytest
from django.core.management import call_command
from django.utils import timezone
from redis import Redis

from scripts import harness
from scripts.devenv import cli, commands, running, services
from tests.factories import make_ticket
from tests.servers import database_url
from tickets.management.commands.seed_demo import DEMO_TICKETS
from tickets.models import Ticket

HOST = harness.HOST


@pytest.fixture
def answering_port():
    """A port on 127.0.0.1 that accepts connections for the length of the test."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
def silent_port():
    return harness.free_port()


# Service choice ----------------------------------------------------------------------------------


def test_service_choice_uses_the_url_from_the_environment_when_set(silent_port):
    choice = services.service_choice(env_url="postgres://db.example/app", default_port=silent_port, forced=False)
    assert choice == services.ENVIRONMENT


def test_service_choice_uses_the_default_server_when_its_port_answers(answering_port):
    assert services.service_choice(env_url=None, default_port=answering_port, forced=False) == services.DEFAULT


def test_service_choice_starts_an_embedded_server_when_nothing_answers(silent_port):
    assert services.service_choice(env_url="", default_port=silent_port, forced=False) == services.EMBEDDED


def test_forced_service_choice_is_embedded_despite_a_url_and_an_answering_port(answering_port):
    choice = services.service_choice(env_url="redis://cache.example:6379/0", default_port=answering_port, forced=True)
    assert choice == services.EMBEDDED


def test_services_start_starts_and_exports_nothing_when_both_urls_are_set(db, monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", database_url())
    monkeypatch.setenv("REDIS_URL", "redis://cache.example:6379/0")
    context = services.Context(env={})
    assert services.services_start(context, forced=False, data_dir=tmp_path) == {}
    assert context.servers == []
    assert list(tmp_path.iterdir()) == []


def test_with_services_gives_the_command_the_urls_and_returns_its_exit_code(db, monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", database_url())
    monkeypatch.setenv("REDIS_URL", "redis://cache.example:6379/0")
    handlers = {sig: signal.getsignal(sig) for sig in running.STOP_SIGNALS}
    check = "import os, sys; sys.exit(3 if os.environ['REDIS_URL'] == 'redis://cache.example:6379/0' else 1)"
    code = services.with_services(
        lambda context: running.run([sys.executable, "-c", check], context.env), forced=False, data_dir=tmp_path
    )
    assert code == 3
    assert {sig: signal.getsignal(sig) for sig in running.STOP_SIGNALS} == handlers


# Command line ------------------------------------------------------------------------------------


def test_embedded_switch_comes_from_the_flag_before_or_after_the_command_or_the_environment(monkeypatch):
    monkeypatch.delenv("FASTTICKET_EMBEDDED", raising=False)
    assert cli.parse_args(["test"]).embedded is False
    assert cli.parse_args(["--embedded", "test"]).embedded is True
    assert cli.parse_args(["serve", "--embedded"]).embedded is True
    monkeypatch.setenv("FASTTICKET_EMBEDDED", "1")
    assert cli.parse_args(["serve"]).embedded is True


def test_test_command_passes_its_arguments_to_pytest_untouched(monkeypatch):
    monkeypatch.delenv("FASTTICKET_EMBEDDED", raising=False)
    args = cli.parse_args(["test", "-q", "-k", "sold_out and not slow", "tests/smoke"])
    assert (args.command, args.args) == ("test", ["-q", "-k", "sold_out and not slow", "tests/smoke"])


def test_pytest_env_applies_the_pyproject_defaults_without_overriding_the_caller():
    assert commands.pytest_env({})["DJANGO_DEBUG"] == "false"
    assert commands.pytest_env({"DJANGO_DEBUG": "true"})["DJANGO_DEBUG"] == "true"


# Embedded servers --------------------------------------------------------------------------------


@pytest.mark.slow
def test_embedded_postgres_and_redis_answer_then_free_their_ports_when_stopped(tmp_path):
    servers = []
    try:
        servers.append(services.postgres_start(tmp_path / "postgres"))
        servers.append(services.redis_start(tmp_path / "redis"))
        postgres, redis = servers
        with psycopg.connect(postgres.url, connect_timeout=10) as connection:
            assert connection.execute("select 1").fetchone() == (1,)
            assert connection.info.dbname == services.DATABASE_NAME
        assert Redis.from_url(redis.url, socket_timeout=10).ping() is True
    finally:
        for server in servers:
            server.stop()
    assert not harness.port_answers(HOST, postgres.port)
    assert not harness.port_answers(HOST, redis.port)
    assert not (tmp_path / "postgres" / "postmaster.pid").exists()


@pytest.mark.slow
def test_embedded_postgres_reuses_its_data_dir_after_a_restart(tmp_path):
    data_dir = tmp_path / "postgres"
    first = services.postgres_start(data_dir)
    try:
        with psycopg.connect(first.url, connect_timeout=10) as connection:
            connection.execute("create table kept (answer int)")
            connection.execute("insert into kept values (42)")
    finally:
        first.stop()
    second = services.postgres_start(data_dir)
    try:
        with psycopg.connect(second.url, connect_timeout=10) as connection:
            assert connection.execute("select answer from kept").fetchall() == [(42,)]
    finally:
        second.stop()


# Stands in for gunicorn or pytest: reports the URLs it was given and its pid, then waits.
CHILD = """
import os, pathlib, sys, time
report = pathlib.Path(sys.argv[1])
report.with_suffix(".tmp").write_text(f"{os.environ['DATABASE_URL']} {os.environ['REDIS_URL']} {os.getpid()}")
report.with_suffix(".tmp").rename(report)
time.sleep(300)
"""
LAUNCHER = """
import sys
from pathlib import Path
from scripts.devenv import running, services
data_dir, report = Path(sys.argv[1]), sys.argv[2]
child = [sys.executable, "-c", sys.argv[3], report]
sys.exit(services.with_services(lambda context: running.run(child, context.env), forced=True, data_dir=data_dir))
"""


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "exit_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_launcher_stops_its_child_and_embedded_servers_when_signalled(tmp_path, sig, exit_code):
    report = tmp_path / "report"
    command = [sys.executable, "-c", LAUNCHER, str(tmp_path / "data"), str(report), CHILD]
    output = tmp_path / "launcher.out"
    with output.open("w") as out:
        env = {**os.environ, "PYTHONPATH": str(harness.ROOT)}
        launcher = subprocess.Popen(command, cwd=harness.ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not report.exists():
            assert launcher.poll() is None, "the launcher exited before starting its child"
            assert time.monotonic() < deadline, "the launcher did not start its child in time"
            time.sleep(0.2)
        database_url, redis_url, child_pid = report.read_text().split()
        ports = [urlsplit(database_url).port, urlsplit(redis_url).port]
        assert all(harness.port_answers(HOST, port) for port in ports)
        launcher.send_signal(sig)
        assert launcher.wait(90) == exit_code
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
    # The launcher stops them itself; Linux's parent-death signal is only the net for a SIGKILL.
    assert "stopping the embedded PostgreSQL" in output.read_text()
    assert "stopping the embedded Redis" in output.read_text()
    assert not any(harness.port_answers(HOST, port) for port in ports)
    with pytest.raises(ProcessLookupError):
        os.kill(int(child_pid), 0)


# seed_demo ---------------------------------------------------------------------------------------


def test_seed_demo_creates_future_tickets_once_with_one_sale_opening_later(db):
    call_command("seed_demo", stdout=StringIO())
    tickets = list(Ticket.objects.all())
    now = timezone.now()
    assert len(tickets) == len(DEMO_TICKETS) >= 3
    assert all(ticket.event_time > now and ticket.issued_count == 0 for ticket in tickets)
    assert sum(ticket.sale_starts_at is not None and ticket.sale_starts_at > now for ticket in tickets) == 1

    call_command("seed_demo", stdout=StringIO())
    assert Ticket.objects.count() == len(tickets)


def test_seed_demo_creates_nothing_when_a_ticket_exists(db):
    make_ticket(title="Already on sale")
    call_command("seed_demo", stdout=StringIO())
    assert list(Ticket.objects.values_list("title", flat=True)) == ["Already on sale"]
