"""This suite's ports for gunicorn servers (8120-8129), and one-off `python` or `manage.py` commands."""

import subprocess
import sys

import pytest

from tests.servers import PROJECT_DIR, child_env

FLOW_PORT = 8120
HEALTHY_PORT = 8121
REDIS_DOWN_PORT = 8122
DATABASE_DOWN_PORT = 8123
BODIES_PORT = 8124
# Nothing listens here: a dependency pointed at one of these is down (connection refused).
CLOSED_PORTS = (8128, 8129)

# settings.py reads a local .env for any variable the environment lacks, so a test that removes a
# variable to see its default cannot do so while one exists.
needs_no_local_env_file = pytest.mark.skipif(
    (PROJECT_DIR / ".env").is_file(), reason="a local .env may supply the variable this test removes"
)


def run_python(code: str, **env: str | None) -> subprocess.CompletedProcess:
    """Run `python -c code` in the project directory with Django settings configured."""
    return _run([sys.executable, "-c", code], timeout=120, DJANGO_SETTINGS_MODULE="fastticket.settings", **env)


def run_manage(*args: str, **env: str | None) -> subprocess.CompletedProcess:
    """Run `manage.py args` in the project directory."""
    return _run([sys.executable, "manage.py", *args], timeout=180, **env)


def _run(argv: list[str], *, timeout: float, **env: str | None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=PROJECT_DIR, env=child_env(**env), capture_output=True, text=True, timeout=timeout)
