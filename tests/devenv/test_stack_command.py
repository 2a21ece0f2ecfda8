"""`./dev stack`: the production topology answers on its port and stops whole on Ctrl-C or SIGTERM."""

import os
import re
import signal
import subprocess
import time
import uuid

import pytest
from django.conf import settings

from scripts import harness
from scripts.harness import database as databases
from tests.servers import database_url
from tests.stack import call

pytestmark = pytest.mark.slow

STARTED = re.compile(r"^dev: (nginx|web \d|pgbouncer)\s+\S+\s+\(pid (\d+)", re.M)


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_dev_stack_serves_through_nginx_with_production_settings_and_stops_everything(tmp_path, stop_signal):
    port = harness.free_port()
    scratch = databases.database_url(database_url(), f"ft_devstack_{os.getpid()}_{uuid.uuid4().hex[:6]}")
    log = tmp_path / "dev-stack.log"
    env = harness.child_env(
        DATABASE_URL=scratch,
        REDIS_URL=settings.CACHES["default"]["LOCATION"],
        REDIS_KEY_PREFIX=f"{settings.REDIS_KEY_PREFIX}-devstack",
        DJANGO_DEBUG=None,
        DJANGO_HTTPS=None,
        DJANGO_SECRET_KEY=None,
    )
    with databases.scratch(scratch), log.open("wb") as out:
        launcher = subprocess.Popen(
            ["./dev", "stack", "--port", str(port)], cwd=harness.ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            base = f"http://127.0.0.1:{port}"
            harness.wait_until(
                lambda: "serving on" in log.read_text() or launcher.poll() is not None,
                timeout=180,
                what="./dev stack to serve",
                interval=0.2,
            )
            assert launcher.poll() is None, log.read_text()
            tickets, _, _ = call(base, "GET", "/api/v1/tickets/")
            missing, _, _ = call(base, "GET", "/no-such-page/")
            started = {name: int(pid) for name, pid in STARTED.findall(log.read_text())}
        finally:
            launcher.send_signal(stop_signal)
            code = launcher.wait(timeout=90)

    assert tickets.status == 200
    assert tickets.body["count"] >= 1, "the demo tickets were seeded"
    # DEBUG off: a JSON-free HTML 404 page without Django's debug listing.
    assert missing.status == 404
    assert "URLconf" not in str(missing.body)
    assert set(started) == {"nginx", "web 1", "web 2", "web 3", "pgbouncer"}, log.read_text()
    assert code in (0, 128 + stop_signal), log.read_text()
    deadline = time.monotonic() + 10
    while any(harness.processes.alive(pid) for pid in started.values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [name for name, pid in started.items() if harness.processes.alive(pid)], "left running"
