"""Behind PgBouncer in transaction mode (Debian's 1.18): what DATABASE_POOLER=transaction changes and why.

The booking race and the row-lock bound through PgBouncer are in tests/concurrency/test_stack.py.
"""

import json
import logging

import psycopg
import pytest
from django.db import connection

from fastticket import pooling
from scripts.harness.database import connect
from scripts.harness.stack import PgBouncer
from tests.ops.servers import run_python
from tests.servers import database_url

pytestmark = pytest.mark.django_db(transaction=True)

SHOW_DATABASE_SETTINGS = (
    "import json; from django.conf import settings; d = settings.DATABASES['default']; "
    "print(json.dumps({'options': d['OPTIONS'], 'cursors': d.get('DISABLE_SERVER_SIDE_CURSORS', False)}))"
)


def pgbouncer_for_tests(tmp_path) -> PgBouncer:
    return PgBouncer(log_path=tmp_path / "pgbouncer.log", run_dir=tmp_path / "pgbouncer", server_url=database_url())


@pytest.fixture
def pgbouncer(tmp_path):
    with pgbouncer_for_tests(tmp_path) as server:
        yield server


def test_pooled_settings_send_no_startup_options_prepare_nothing_and_use_no_server_side_cursors():
    done = run_python(SHOW_DATABASE_SETTINGS, DATABASE_POOLER="transaction")

    assert done.returncode == 0, done.stderr
    database = json.loads(done.stdout.strip().splitlines()[-1])
    assert "options" not in database["options"]
    assert database["options"]["prepare_threshold"] is None
    assert database["cursors"] is True


def test_direct_settings_send_the_timeouts_as_startup_options():
    done = run_python(SHOW_DATABASE_SETTINGS, DATABASE_POOLER="none", BOOKING_LOCK_WAIT="2")

    database = json.loads(done.stdout.strip().splitlines()[-1])
    assert database["options"]["options"] == "-c lock_timeout=2000 -c statement_timeout=10000"
    assert database["cursors"] is False


def test_an_unknown_pooler_mode_is_refused_at_start():
    done = run_python("import django; django.setup()", DATABASE_POOLER="session")

    assert done.returncode != 0
    assert "DATABASE_POOLER must be none or transaction" in done.stderr


def test_pgbouncer_refuses_the_startup_options_a_direct_connection_sends(pgbouncer):
    with pytest.raises(psycopg.OperationalError, match="unsupported startup parameter: options"):
        connect(pgbouncer.url(connection.settings_dict["NAME"]), options="-c lock_timeout=1000")


def test_role_defaults_reach_every_pooled_session(tmp_path, settings):
    settings.DATABASE_SESSION_SETTINGS = {"lock_timeout": 2500, "statement_timeout": 7000}
    pooling.database_defaults_set(connection)

    # Server sessions opened from now on start with them (the ones already open keep theirs).
    with (
        pgbouncer_for_tests(tmp_path) as pgbouncer,
        connect(pgbouncer.url(connection.settings_dict["NAME"]), autocommit=True, prepare_threshold=None) as pooled,
    ):
        found = dict(
            pooled.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN ('lock_timeout', 'statement_timeout')"
            ).fetchall()
        )
        pooled.execute("DISCARD ALL")
        after_discard = pooled.execute("SHOW lock_timeout").fetchone()[0]

    assert found == {"lock_timeout": "2500", "statement_timeout": "7000"}
    assert after_discard == "2500ms"


def _statement_lands_on_another_server_session(pgbouncer, prepare_threshold) -> None:
    """Run one query often enough to be prepared, then again while its server session is taken."""
    url = pgbouncer.url(connection.settings_dict["NAME"])
    with (
        connect(url, autocommit=True, prepare_threshold=prepare_threshold) as client,
        connect(url, autocommit=True, prepare_threshold=None) as other,
    ):
        for _ in range(8):
            client.execute("SELECT %s::int + 1", [1])
        # The other client's transaction holds the server session that knows the statement
        # (PgBouncer hands out the most recently used one), so the next query gets another.
        with other.transaction():
            other.execute("SELECT 1")
            client.execute("SELECT %s::int + 1", [1])


def test_psycopgs_automatic_prepared_statements_break_behind_pgbouncer(pgbouncer):
    with pytest.raises(psycopg.errors.InvalidSqlStatementName):
        _statement_lands_on_another_server_session(pgbouncer, prepare_threshold=5)


def test_without_prepared_statements_the_same_queries_run_on_any_server_session(pgbouncer):
    _statement_lands_on_another_server_session(pgbouncer, prepare_threshold=None)


def test_a_pooled_process_logs_an_error_when_the_sessions_miss_the_timeouts(settings, caplog, monkeypatch):
    settings.DATABASE_POOLER = "transaction"
    settings.DATABASE_SESSION_SETTINGS = {"lock_timeout": 123456, "statement_timeout": 654321}
    monkeypatch.setattr(pooling, "_checked", False)

    with caplog.at_level(logging.ERROR, logger="fastticket.pooling"):
        pooling.session_settings_check(sender=None, connection=connection)
        pooling.session_settings_check(sender=None, connection=connection)

    errors = [record for record in caplog.records if record.name == "fastticket.pooling"]
    assert len(errors) == 1, "checked once per process"
    assert "lock_timeout=" in errors[0].getMessage()
    assert "set_database_defaults" in errors[0].getMessage()
