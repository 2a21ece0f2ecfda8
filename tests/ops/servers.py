"""One-off `python` or `manage.py` commands in the project directory, for the operations tests."""

import subprocess

import pytest

from scripts.harness import processes
from tests.servers import PROJECT_DIR, child_env

# settings.py reads a local .env for any variable the environment lacks, so a test that removes a
# variable to see its default cannot do so while one exists.
needs_no_local_env_file = pytest.mark.skipif(
    (PROJECT_DIR / ".env").is_file(), reason="a local .env may supply the variable this test removes"
)


def run_python(code: str, **env: str | None) -> subprocess.CompletedProcess:
    """Run `python -c code` in the project directory with Django settings configured."""
    return processes.run_python(
        ["-c", code], env=child_env(DJANGO_SETTINGS_MODULE="fastticket.settings", **env), timeout=120
    )


def run_manage(*args: str, **env: str | None) -> subprocess.CompletedProcess:
    """Run `manage.py args` in the project directory."""
    return processes.manage(*args, env=child_env(**env), timeout=180)
